//! The change state model over raw HTTP: the moves the Table API may make on a change, the
//! refusals ServiceNow's business rules answer, the approvers' steps through the control API,
//! and the groups and service seeded for changes.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};
use servicenow_sim::SnSim;

use common::{body, get, http, send, sim};

/// A new normal change through the Table API; answers its sys_id.
async fn new_change(sim: &SnSim, extra: Value) -> String {
    let mut fields = json!({"short_description": "Deploy"});
    if let (Some(f), Value::Object(e)) = (fields.as_object_mut(), extra) {
        f.extend(e);
    }
    let resp = send(sim, reqwest::Method::POST, "/api/now/table/change_request", fields).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    body(resp).await["result"]["sys_id"].as_str().unwrap().to_string()
}

async fn patch_change(sim: &SnSim, id: &str, fields: Value) -> reqwest::Response {
    send(sim, reqwest::Method::PATCH, &format!("/api/now/table/change_request/{id}"), fields).await
}

/// The change's (state, approval) as stored.
fn stored_state(sim: &SnSim, id: &str) -> (String, String) {
    let r = sim.record("change_request", id).unwrap();
    (r["state"].as_str().unwrap().to_string(), r["approval"].as_str().unwrap().to_string())
}

/// A refused move: 403 with ServiceNow's "Operation Failed" body, and nothing changed.
async fn assert_refused(sim: &SnSim, id: &str, fields: Value, detail_has: &str) {
    let before = sim.record("change_request", id).unwrap();
    let resp = patch_change(sim, id, fields.clone()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{fields}");
    let err = body(resp).await;
    assert_eq!(err["status"], "failure");
    assert_eq!(err["error"]["message"], "Operation Failed");
    let detail = err["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("aborted by Business Rule"), "{detail}");
    assert!(detail.contains(detail_has), "{detail} lacks {detail_has}");
    assert_eq!(sim.record("change_request", id).unwrap(), before, "nothing changed");
}

/// Takes a new change to `state` the way ServiceNow would: the API to Assess, the approvers
/// on, the API again from Scheduled.
async fn change_in(sim: &SnSim, state: &str) -> String {
    let id = new_change(sim, json!({})).await;
    let path = ["-4", "-3", "-2", "-1", "0"];
    for step in path.iter().take_while(|s| state != "-5" && **s != state).chain(path.iter().find(|s| **s == state)) {
        match *step {
            "-3" | "-2" => {
                sim.approve_change(&id).unwrap();
            }
            s => assert_eq!(patch_change(sim, &id, json!({"state": s})).await.status(), StatusCode::OK, "to {s}"),
        }
    }
    assert_eq!(stored_state(sim, &id).0, state);
    id
}

#[tokio::test]
async fn the_change_state_model_is_enforced() {
    let sim = sim().await;
    let resp =
        send(&sim, reqwest::Method::POST, "/api/now/table/change_request", json!({"short_description": "Deploy"}))
            .await;
    let chg = body(resp).await["result"].clone();
    let id = chg["sys_id"].as_str().unwrap().to_string();
    assert_eq!(chg["number"], "CHG0030001");
    assert_eq!((chg["type"].as_str(), chg["state"].as_str()), (Some("normal"), Some("-5")));
    assert_eq!(chg["approval"], "not requested");

    // New: only to Assess (Request Approval) or Canceled.
    for s in ["-3", "-2", "-1", "0", "3"] {
        assert_refused(&sim, &id, json!({"state": s, "close_code": "successful", "close_notes": "x"}), "New (-5)")
            .await;
    }
    let r = body(patch_change(&sim, &id, json!({"state": "-4"})).await).await;
    assert_eq!((r["result"]["state"].as_str(), r["result"]["approval"].as_str()), (Some("-4"), Some("requested")));
    let approvals = sim.records("sysapproval_group");
    assert!(approvals.is_empty(), "the Assess group's approval is recorded when it decides");

    // Assess: the approvers move it on, not the API.
    assert_refused(&sim, &id, json!({"state": "-3"}), "approvers").await;
    assert_refused(&sim, &id, json!({"state": "-3", "approval": "approved"}), "approvers").await;
    assert_refused(&sim, &id, json!({"state": "-2"}), "Assess (-4)").await;
    assert_refused(&sim, &id, json!({"state": "-1"}), "Assess (-4)").await;
    assert_eq!(sim.approve_change(&id).as_deref(), Ok("-3"));
    assert_eq!(stored_state(&sim, &id), ("-3".into(), "requested".into()), "now the CAB's step");

    // Authorize: likewise.
    assert_refused(&sim, &id, json!({"state": "-2"}), "approvers").await;
    assert_refused(&sim, &id, json!({"state": "-1"}), "Authorize (-3)").await;
    assert_eq!(sim.approve_change(&id).as_deref(), Ok("-2"));
    assert_eq!(stored_state(&sim, &id), ("-2".into(), "approved".into()));
    assert!(sim.approve_change(&id).is_err(), "nothing left to approve");

    // Scheduled: only to Implement; Review directly is refused.
    assert_refused(&sim, &id, json!({"state": "0"}), "Scheduled (-2) to Review (0)").await;
    assert_refused(&sim, &id, json!({"state": "3", "close_code": "successful", "close_notes": "x"}), "Scheduled").await;
    assert_eq!(patch_change(&sim, &id, json!({"state": "-1"})).await.status(), StatusCode::OK);

    // Implement: only to Review.
    assert_refused(&sim, &id, json!({"state": "-2"}), "Implement (-1)").await;
    assert_refused(&sim, &id, json!({"state": "3", "close_code": "successful", "close_notes": "ok"}), "Implement")
        .await;
    assert_eq!(patch_change(&sim, &id, json!({"state": "0"})).await.status(), StatusCode::OK);

    // Review: Closed, with close code and notes; no longer cancelable.
    assert_refused(&sim, &id, json!({"state": "4"}), "Review").await;
    assert_refused(&sim, &id, json!({"state": "3", "close_code": "successful"}), "mandatory").await;
    assert_refused(&sim, &id, json!({"state": "3", "close_notes": "done"}), "mandatory").await;
    let ok = patch_change(&sim, &id, json!({"state": "3", "close_code": "successful_issues", "close_notes": "done"}));
    let closed = body(ok.await).await["result"].clone();
    assert_eq!((closed["state"].as_str(), closed["active"].as_str()), (Some("3"), Some("false")));
    let path = format!("/api/now/table/change_request/{id}");
    let shown = body(get(&sim, &format!("{path}?sysparm_display_value=true")).await).await["result"].clone();
    assert_eq!(shown["close_code"], "Successful with issues");
    assert_eq!(shown["state"], "Closed");

    // Closed: final.
    for s in ["-5", "0", "4"] {
        assert_refused(&sim, &id, json!({"state": s}), "Closed (3)").await;
    }
    // Writing the same state again is no move.
    assert_eq!(patch_change(&sim, &id, json!({"state": "3", "work_notes": "again"})).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_change_is_canceled_from_any_open_state_but_review() {
    let sim = sim().await;
    for state in ["-5", "-4", "-3", "-2", "-1"] {
        let id = change_in(&sim, state).await;
        let r = patch_change(&sim, &id, json!({"state": "4"})).await;
        assert_eq!(r.status(), StatusCode::OK, "from {state}");
        let rec = sim.record("change_request", &id).unwrap();
        assert_eq!((rec["state"].as_str(), rec["active"].as_str()), (Some("4"), Some("false")), "from {state}");
        assert_refused(&sim, &id, json!({"state": "-4"}), "Canceled (4)").await;
        assert!(sim.approve_change(&id).is_err(), "a canceled change has nothing to approve");
    }
    let id = change_in(&sim, "0").await;
    assert_refused(&sim, &id, json!({"state": "4"}), "Review").await;
}

#[tokio::test]
async fn inserts_follow_the_model_and_other_types_take_their_shortcuts() {
    let sim = sim().await;
    let assessed = new_change(&sim, json!({"state": "-4"})).await;
    assert_eq!(stored_state(&sim, &assessed), ("-4".into(), "requested".into()));
    let resp = send(
        &sim,
        reqwest::Method::POST,
        "/api/now/table/change_request",
        json!({"short_description": "x", "state": "-2"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(sim.records("change_request").len(), 1, "nothing inserted");

    let standard = new_change(&sim, json!({"type": "standard"})).await;
    assert_refused(&sim, &standard, json!({"state": "-4"}), "standard").await;
    assert_eq!(patch_change(&sim, &standard, json!({"state": "-2"})).await.status(), StatusCode::OK);
    let emergency = new_change(&sim, json!({"type": "emergency"})).await;
    assert_refused(&sim, &emergency, json!({"state": "-4"}), "emergency").await;
    assert_eq!(patch_change(&sim, &emergency, json!({"state": "-3"})).await.status(), StatusCode::OK);
    assert_eq!(stored_state(&sim, &emergency).1, "requested");
    assert_eq!(sim.approve_change(&emergency).as_deref(), Ok("-2"));

    // Revert to New (documented for a normal change in Assess).
    assert_eq!(patch_change(&sim, &assessed, json!({"state": "-5"})).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn approvals_through_the_control_api() {
    let sim = sim().await;
    let base = sim.base_url();
    let groups = |name: &str| {
        sim.records("sys_user_group").into_iter().find(|g| g["name"] == name).map(|g| g["sys_id"].clone()).unwrap()
    };
    let platform = groups("Platform Team");
    let cab = groups("CAB Approval");
    let id = new_change(&sim, json!({"assignment_group": platform, "state": "-4"})).await;
    let post = |what: &str| http().post(format!("{base}/_sim/changes/{id}/{what}")).send();

    let r = post("approve").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rec = body(r).await;
    assert_eq!((rec["state"].as_str(), rec["approval"].as_str()), (Some("-3"), Some("requested")));
    let approvals = sim.records("sysapproval_group");
    let of = |g: &Value| approvals.iter().find(|a| a["assignment_group"] == *g).unwrap()["approval"].clone();
    assert_eq!(of(&platform), "approved", "the Assess group (the change's assignment group) approved");
    assert_eq!(of(&cab), "requested", "the CAB is asked next");

    let rec = body(post("approve").await.unwrap()).await;
    assert_eq!((rec["state"].as_str(), rec["approval"].as_str()), (Some("-2"), Some("approved")));
    let again = post("approve").await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(body(again).await["status"], "failure");
    let missing = http().post(format!("{base}/_sim/changes/{}/approve", "0".repeat(32))).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A rejection, at either step, sends the change back to New with approval "rejected".
    for approvals_first in [0, 1] {
        let id = new_change(&sim, json!({"state": "-4"})).await;
        for _ in 0..approvals_first {
            sim.approve_change(&id).unwrap();
        }
        let r = http().post(format!("{base}/_sim/changes/{id}/reject")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let rec = body(r).await;
        assert_eq!((rec["state"].as_str(), rec["approval"].as_str()), (Some("-5"), Some("rejected")));
        assert_eq!(rec["active"], "true");
        assert!(sim.reject_change(&id).is_err(), "nothing pending any more");
        // Resubmitting asks for approval again.
        assert_eq!(patch_change(&sim, &id, json!({"state": "-4"})).await.status(), StatusCode::OK);
        assert_eq!(stored_state(&sim, &id), ("-4".into(), "requested".into()));
    }
}

#[tokio::test]
async fn admin_writes_are_not_refused() {
    let sim = sim().await;
    let id = new_change(&sim, json!({})).await;
    // What end-to-end tests do to play a change manager.
    assert!(sim.set_field("change_request", &id, "approval", "approved"));
    assert!(sim.set_field("change_request", &id, "state", "-1"));
    assert_eq!(stored_state(&sim, &id), ("-1".into(), "approved".into()));
    let r = http()
        .patch(format!("{}/_sim/records/change_request/{id}", sim.base_url()))
        .json(&json!({"state": "-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stored_state(&sim, &id).0, "-2");
}

#[tokio::test]
async fn groups_and_the_shop_service_are_seeded() {
    let sim = sim().await;
    for (table, name) in [
        ("sys_user_group", "Change Management"),
        ("sys_user_group", "CAB Approval"),
        ("cmdb_ci", "Shop (business service)"),
    ] {
        let q = format!(
            "/api/now/table/{table}?sysparm_query=name%3D{}&sysparm_fields=sys_id,name",
            name.replace(' ', "%20").replace('(', "%28").replace(')', "%29")
        );
        let found = body(get(&sim, &q).await).await["result"].clone();
        assert_eq!(found.as_array().unwrap().len(), 1, "{table} {name}");
        assert_eq!(found[0]["name"], name);
    }
    let ci = sim.records("cmdb_ci")[0]["sys_id"].clone();
    let id = new_change(&sim, json!({"cmdb_ci": ci})).await;
    let shown = body(get(&sim, &format!("/api/now/table/change_request/{id}?sysparm_display_value=true")).await).await;
    assert_eq!(shown["result"]["cmdb_ci"]["display_value"], "Shop (business service)");
}
