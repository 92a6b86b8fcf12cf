//! Inserts and updates through the Table API (and the control API): the table's defaults, its
//! record numbers, the platform's `sys_*` fields, which fields are stored (as text) and which
//! are journal entries; the business rules run on every write (`change_model.rs`).

use serde_json::{Map, Value};

use super::{Actor, Db, Refusal, Row, new_sys_id, now};
use crate::schema::{JOURNAL_FIELDS, JOURNAL_TABLE, SYS_FIELDS, def};

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A JSON value as ServiceNow stores it: text.
fn stored(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => o.get("value").map(stored).unwrap_or_default(),
        Value::Array(a) => a.iter().map(stored).collect::<Vec<_>>().join(","),
    }
}

impl Db {
    fn accepts(&self, table: &str, field: &str) -> bool {
        if SYS_FIELDS.contains(&field) {
            return false;
        }
        match def(table) {
            Some(d) => d.has(field) || field.starts_with("u_"),
            None => true,
        }
    }

    /// Inserts a record and answers its sys_id.
    pub(crate) fn insert(
        &mut self,
        table: &str,
        body: &Map<String, Value>,
        actor: &Actor<'_>,
    ) -> Result<String, Refusal> {
        if table == JOURNAL_TABLE {
            return Err(acl_refusal());
        }
        let at = now();
        let requested = body.get("sys_id").map(stored).filter(|s| is_sys_id(s));
        let sys_id = match requested {
            Some(id) if self.row(table, &id).is_none() => id,
            _ => new_sys_id(),
        };
        let mut fields = Map::new();
        let d = def(table);
        if let Some(d) = &d {
            for fs in d.fields {
                for f in *fs {
                    fields.insert((*f).to_string(), Value::String(String::new()));
                }
            }
        }
        let mut defaults: Vec<(&str, String)> = vec![];
        match table {
            "sc_req_item" => {
                defaults.extend([
                    ("state", "1".into()),
                    ("approval", "not requested".into()),
                    ("active", "true".into()),
                ]);
                defaults.push(("quantity", "1".into()));
            }
            "change_request" => defaults.extend([
                ("state", "-5".into()),
                ("approval", "not requested".into()),
                ("active", "true".into()),
                ("type", "normal".into()),
                ("phase", "requested".into()),
            ]),
            "sc_request" => defaults.extend([
                ("state", "1".into()),
                ("approval", "not requested".into()),
                ("active", "true".into()),
                ("request_state", "requested".into()),
            ]),
            "sys_user" | "sc_cat_item" | "item_option_new_set" | "item_option_new" | "sys_user_group" => {
                defaults.push(("active", "true".into()))
            }
            _ => {}
        }
        if d.as_ref().is_some_and(|d| d.is_task()) {
            defaults.push(("opened_at", at.clone()));
            if let Some(u) = self.user_sys_id(actor.user) {
                defaults.push(("opened_by", u));
            }
        }
        if let Some((prefix, first)) = d.as_ref().and_then(|d| d.number) {
            let n = self.counters.entry(table.to_string()).or_insert(first);
            defaults.push(("number", format!("{prefix}{:07}", *n)));
            *n += 1;
        }
        for (k, v) in defaults {
            fields.insert(k.into(), Value::String(v));
        }
        let before = fields.clone();
        let (mut patch, notes) = self.split(table, body);
        self.rules(table, &before, &mut patch, actor, &at)?;
        fields.extend(patch);
        if table == "sys_user" && fields.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
            // `sys_user.name` is calculated from the first and last names.
            let part = |f: &str| fields.get(f).and_then(Value::as_str).unwrap_or("").trim().to_string();
            let name = [part("first_name"), part("last_name")].join(" ").trim().to_string();
            fields.insert("name".into(), Value::String(name));
        }
        for (k, v) in [
            ("sys_id", sys_id.clone()),
            ("sys_created_on", at.clone()),
            ("sys_created_by", actor.user.to_string()),
            ("sys_updated_on", at.clone()),
            ("sys_updated_by", actor.user.to_string()),
            ("sys_mod_count", "0".into()),
            ("sys_class_name", table.to_string()),
        ] {
            fields.insert(k.into(), Value::String(v));
        }
        let seq = self.next_seq();
        self.tables.entry(table.to_string()).or_default().push(Row { seq, fields });
        self.add_notes(table, &sys_id, notes, actor.user, &at);
        Ok(sys_id)
    }

    /// Updates a record; `Ok(false)` when there is no such record.
    pub(crate) fn update(
        &mut self,
        table: &str,
        sys_id: &str,
        body: &Map<String, Value>,
        actor: &Actor<'_>,
    ) -> Result<bool, Refusal> {
        if table == JOURNAL_TABLE {
            return Err(acl_refusal());
        }
        let Some(before) = self.row(table, sys_id) else { return Ok(false) };
        let at = now();
        let (mut patch, notes) = self.split(table, body);
        self.rules(table, &before.fields, &mut patch, actor, &at)?;
        if let Some(row) =
            self.tables.get_mut(table).and_then(|rows| rows.iter_mut().find(|r| r.get("sys_id") == sys_id))
        {
            row.fields.extend(patch);
            let count = row.get("sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
            row.fields.insert("sys_mod_count".into(), Value::String(count.to_string()));
            row.fields.insert("sys_updated_on".into(), Value::String(at.clone()));
            row.fields.insert("sys_updated_by".into(), Value::String(actor.user.to_string()));
        }
        self.add_notes(table, sys_id, notes, actor.user, &at);
        Ok(true)
    }

    /// The body's storable fields (as text) and its journal entries (element, text).
    fn split(&self, table: &str, body: &Map<String, Value>) -> (Map<String, Value>, Vec<(String, String)>) {
        let mut patch = Map::new();
        let mut notes = Vec::new();
        for (k, v) in body {
            if JOURNAL_FIELDS.contains(&k.as_str()) {
                let text = stored(v);
                if !text.trim().is_empty() {
                    notes.push((k.clone(), text));
                }
            } else if self.accepts(table, k) {
                patch.insert(k.clone(), Value::String(stored(v)));
            }
        }
        (patch, notes)
    }
}

fn acl_refusal() -> Refusal {
    Refusal {
        status: 403,
        message: "Operation Failed".into(),
        detail: "ACL Exception Insert Failed due to security constraints".into(),
    }
}
