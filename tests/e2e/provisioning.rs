//! Provisioning end to end, with the PCD simulator as its own process and `gatehouse serve` as a
//! child process in its configured (non-demo) mode.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::process::{ServeProcess, SimProcess};
use support::{Api, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@example.com";
const REQUESTER: &str = "ada@example.com";

/// Intake of `body`, then the approver's link; answers the request id and the link's page.
async fn submit(api: &Api, body: Value) -> (String, String) {
    let (status, answer) = api.intake(&body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let mails = api.wait_mails_to(APPROVER, 1).await;
    let mail = mails.iter().rev().find(|m| m.text.contains(&id)).expect("approver mail");
    (id, page_of(&links(mail).0))
}

async fn approve(api: &Api, page: &str) -> u16 {
    let resp = api
        .http
        .post(page)
        .header("accept", "application/json")
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

fn body(server_name: &str, flavor: &str, count: u32) -> Value {
    let mut b = intake_body(&sys_id());
    b["server_name"] = json!(server_name);
    b["flavor"] = json!(flavor);
    b["count"] = json!(count);
    b
}

async fn ours(sim: &SimProcess, id: &str) -> Vec<Value> {
    sim.servers().await.into_iter().filter(|s| s["metadata"]["gatehouse_request_id"] == id).collect()
}

#[tokio::test]
async fn an_approved_request_becomes_a_running_vm_and_the_requester_hears_its_address() {
    let sim = SimProcess::start(300);
    let serve = ServeProcess::start(&sim, &[]).await;
    let (id, page) = submit(&serve, body("web-01", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    let servers = r["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["name"], "web-01");
    assert_eq!(servers[0]["status"], "ACTIVE");
    let address = servers[0]["addresses"][0].as_str().unwrap().to_string();
    assert!(address.starts_with("10."), "{address}");
    let steps: Vec<_> = support::steps(&r).iter().map(|h| h["to"].as_str().unwrap().to_string()).collect();
    assert_eq!(steps, ["pending_approval", "approved", "provisioning", "active"]);
    for h in r["history"].as_array().unwrap() {
        assert!(h["actor"].as_str().is_some_and(|a| !a.is_empty()) && h["at"].is_string(), "{h}");
    }
    assert_eq!(support::steps(&r)[1]["actor"], APPROVER);

    let mails = serve.wait_mails_to(REQUESTER, 3).await;
    let ready = mails.iter().find(|m| m.subject.starts_with("Ready")).expect("ready mail");
    assert!(ready.text.contains(&address) && ready.text.contains(servers[0]["id"].as_str().unwrap()));
    assert_eq!(ours(&sim, &id).await.len(), 1);
}

#[tokio::test]
async fn count_three_makes_three_numbered_servers_and_a_diskless_flavor_boots_from_a_volume() {
    let sim = SimProcess::start(200);
    let serve = ServeProcess::start(&sim, &[]).await;
    let (id, page) = submit(&serve, body("app", "bfv.medium", 3)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    let names: Vec<_> =
        r["servers"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["app-1", "app-2", "app-3"]);
    let on_pcd = ours(&sim, &id).await;
    assert_eq!(on_pcd.len(), 3);
    for s in on_pcd {
        assert_eq!(s["boot_from_volume"], true, "{s}");
        let bdm = &s["request_body"]["server"]["block_device_mapping_v2"][0];
        assert_eq!(bdm["source_type"], "image");
        assert_eq!(bdm["destination_type"], "volume");
        assert_eq!(bdm["volume_size"], 20);
    }
}

#[tokio::test]
async fn fifty_concurrent_approvals_make_exactly_one_vm() {
    let sim = SimProcess::start(200);
    let serve = ServeProcess::start(&sim, &[]).await;
    let (id, page) = submit(&serve, body("once", "m1.tiny", 1)).await;
    let clicks = futures::future::join_all((0..50).map(|_| approve(&serve, &page))).await;
    assert_eq!(clicks.iter().filter(|s| **s == 200).count(), 1, "{clicks:?}");
    serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ours(&sim, &id).await.len(), 1);
}

async fn fails_with(fault: Value, expect_in_reason: &str) {
    let sim = SimProcess::start(200);
    let serve = ServeProcess::start(&sim, &[]).await;
    sim.set_faults(fault).await;
    let (id, page) = submit(&serve, body("doomed", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let r = serve.wait_status(&id, "failed", Duration::from_secs(20)).await;
    let error = r["error"].as_str().unwrap();
    assert!(error.contains(expect_in_reason), "{error}");
    let mails = serve.wait_mails_to(REQUESTER, 3).await;
    let failed = mails.iter().find(|m| m.subject.starts_with("Failed")).expect("failed mail to the requester");
    assert!(failed.text.contains(expect_in_reason), "{}", failed.text);
    let to_approver = serve.wait_mails_to(APPROVER, 2).await;
    assert!(to_approver.iter().any(|m| m.subject.starts_with("Failed")), "the approver hears of it too");
    assert_eq!(support::steps(&r).last().unwrap()["to"], "failed");
}

#[tokio::test]
async fn nova_error_ends_failed_with_the_fault_message() {
    fails_with(
        json!({"server_error": "No valid host was found. There are not enough hosts available."}),
        "No valid host was found",
    )
    .await;
}

#[tokio::test]
async fn quota_ends_failed_with_novas_reason() {
    fails_with(json!({"quota": 403}), "Quota exceeded for instances").await;
}

#[tokio::test]
async fn a_5xx_on_create_ends_failed() {
    fails_with(json!({"create_status": 500}), "answered HTTP 500").await;
}

#[tokio::test]
async fn a_vm_slower_than_the_in_run_wait_is_finished_by_the_sweeper() {
    let sim = SimProcess::start(3000);
    let serve = ServeProcess::start(&sim, &[("GATEHOUSE_PROVISION_WAIT_SECS", "1")]).await;
    let (id, page) = submit(&serve, body("slow", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    // The server is created and still building while the one-second in-run wait runs out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let parked = loop {
        let r = serve.request(&id).await;
        if !r["servers"].as_array().unwrap().is_empty() {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "no server recorded: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(parked["status"], "provisioning");
    assert_eq!(parked["servers"][0]["status"], "BUILD");
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    assert_eq!(r["servers"][0]["status"], "ACTIVE");
    let rechecked = r["history"].as_array().unwrap().iter().any(|h| h["note"] == "re-checking the servers");
    assert!(rechecked, "the sweeper finished it: {r}");
    assert_eq!(ours(&sim, &id).await.len(), 1);
}

#[tokio::test]
async fn a_vm_that_never_becomes_active_fails_at_the_deadline() {
    let sim = SimProcess::start(200);
    let serve = ServeProcess::start(
        &sim,
        &[("GATEHOUSE_PROVISION_WAIT_SECS", "1"), ("GATEHOUSE_PROVISION_DEADLINE_SECS", "3")],
    )
    .await;
    sim.set_faults(json!({"never_active": true})).await;
    let (id, page) = submit(&serve, body("stuck", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let r = serve.wait_status(&id, "failed", Duration::from_secs(20)).await;
    assert!(r["error"].as_str().unwrap().contains("not ACTIVE within"), "{r}");
}

#[tokio::test]
async fn serve_killed_after_nova_accepted_the_create_finishes_with_one_vm() {
    let sim = SimProcess::start(2500);
    let mut serve = ServeProcess::start(&sim, &[]).await;
    let (id, page) = submit(&serve, body("crash-after", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    // The id is recorded and the VM is still building: kill.
    let r = serve.wait_status(&id, "provisioning", Duration::from_secs(5)).await;
    let mut recorded = r;
    while recorded["servers"].as_array().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        recorded = serve.request(&id).await;
    }
    serve.kill();
    serve.restart().await;
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    assert_eq!(r["servers"][0]["id"], recorded["servers"][0]["id"]);
    assert_eq!(ours(&sim, &id).await.len(), 1);
}

#[tokio::test]
async fn serve_killed_before_it_recorded_the_id_adopts_the_vm_instead_of_making_another() {
    let sim = SimProcess::start(300);
    let mut serve = ServeProcess::start(&sim, &[]).await;
    // Nova creates the server, then takes 3 s to answer: serve dies before it hears the id.
    sim.set_faults(json!({"create_reply_delay_ms": 3000})).await;
    let (id, page) = submit(&serve, body("crash-before", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ours(&sim, &id).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "Nova never saw the create");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(serve.request(&id).await["servers"].as_array().unwrap().is_empty(), "the id was not recorded yet");
    serve.kill();
    sim.set_faults(json!({})).await;
    serve.restart().await;
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    let on_pcd = ours(&sim, &id).await;
    assert_eq!(on_pcd.len(), 1, "adopted, not created twice");
    assert_eq!(r["servers"][0]["id"], on_pcd[0]["id"]);
    let taken_over =
        r["history"].as_array().unwrap().iter().any(|h| h["note"].as_str().is_some_and(|n| n.contains("resumed")));
    assert!(taken_over, "{r}");
}

#[tokio::test]
async fn a_compute_outage_while_a_created_vm_builds_delays_but_does_not_fail_it() {
    let sim = SimProcess::start(2000);
    let serve = ServeProcess::start(&sim, &[("GATEHOUSE_PROVISION_WAIT_SECS", "2")]).await;
    let (id, page) = submit(&serve, body("patient", "m1.small", 1)).await;
    assert_eq!(approve(&serve, &page).await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while serve.request(&id).await["servers"].as_array().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no server recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nova answers 503 for a while after the create was accepted.
    sim.set_faults(json!({"fail_services": ["compute"]})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(serve.request(&id).await["status"], "provisioning");
    sim.set_faults(json!({})).await;
    let r = serve.wait_status(&id, "active", Duration::from_secs(20)).await;
    assert_eq!(r["servers"][0]["status"], "ACTIVE");
    assert_eq!(ours(&sim, &id).await.len(), 1);
}
