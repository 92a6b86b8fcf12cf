//! Unit tests of the records: encoded queries and the change state model.

use super::*;
use serde_json::json;

fn db_with(values: &[(&str, &str)]) -> (Db, Vec<String>) {
    let mut db = Db::default();
    let actor = Actor { user: "t", enforce: true };
    let ids = values
        .iter()
        .map(|(cid, desc)| {
            let mut m = Map::new();
            m.insert("correlation_id".into(), json!(cid));
            m.insert("short_description".into(), json!(desc));
            db.insert("change_request", &m, &actor).ok().unwrap()
        })
        .collect();
    (db, ids)
}

#[test]
fn queries_drop_what_they_do_not_understand() {
    let (db, ids) = db_with(&[("a", "one"), ("b", "two"), ("A", "three")]);
    let n = |q: &str| db.select("change_request", q).len();
    assert_eq!(n("correlation_id=a"), 2, "= ignores case");
    assert_eq!(n("correlation_id!=a"), 1);
    assert_eq!(n("correlation_idINa,b"), 3);
    assert_eq!(n("no_such_field=x"), 3, "unknown field: dropped");
    assert_eq!(n("correlation_idENDSWITHa"), 3, "unknown operator: dropped");
    assert_eq!(n("short_descriptionLIKEO"), 2, "LIKE: contains, ignoring case");
    assert_eq!(n("short_description>three"), 1, "compared as text");
    assert_eq!(n("short_description>=three^short_description<two"), 1);
    assert_eq!(n("short_description<=one"), 1);
    assert_eq!(n("correlation_id=b^ORcorrelation_id=a"), 1, "^OR: dropped");
    assert_eq!(n("active=true^state=-5"), 3);
    let order: Vec<String> =
        db.select("change_request", "ORDERBYDESCnumber").iter().map(|r| r.get("sys_id").to_string()).collect();
    assert_eq!(order, ids.iter().rev().cloned().collect::<Vec<_>>());
    let newest = db.select("change_request", "ORDERBYDESCsys_created_on");
    assert_eq!(newest[0].get("sys_id"), ids[2], "same second: newest first");
}

#[test]
fn change_state_model() {
    let (mut db, ids) = db_with(&[("a", "one")]);
    let id = &ids[0];
    let actor = Actor { user: "t", enforce: true };
    let set = |db: &mut Db, kv: Value| {
        let Value::Object(m) = kv else { unreachable!() };
        db.update("change_request", id, &m, &actor).map_err(|r| r.detail)
    };
    assert!(set(&mut db, json!({"state": "-1"})).is_err());
    assert!(set(&mut db, json!({"state": "-3"})).unwrap_err().contains("New (-5) to Authorize (-3)"));
    set(&mut db, json!({"state": "-4"})).unwrap();
    assert_eq!(db.row("change_request", id).unwrap().get("approval"), "requested");
    assert!(set(&mut db, json!({"state": "-3"})).unwrap_err().contains("approvers"));
    assert_eq!(db.decide_change(id, true, "t").ok().flatten().as_deref(), Some("-3"));
    assert_eq!(db.decide_change(id, true, "t").ok().flatten().as_deref(), Some("-2"));
    assert_eq!(db.row("change_request", id).unwrap().get("approval"), "approved");
    assert!(set(&mut db, json!({"state": "0"})).is_err());
    set(&mut db, json!({"state": "-1"})).unwrap();
    set(&mut db, json!({"state": "0"})).unwrap();
    assert!(set(&mut db, json!({"state": "4"})).unwrap_err().contains("Review"));
    assert!(set(&mut db, json!({"state": "3", "close_code": "successful"})).unwrap_err().contains("mandatory"));
    set(&mut db, json!({"state": "3", "close_code": "successful", "close_notes": "ok"})).unwrap();
    let row = db.row("change_request", id).unwrap();
    assert_eq!(row.get("active"), "false");
    assert_eq!(row.get("sys_mod_count"), "6");
}
