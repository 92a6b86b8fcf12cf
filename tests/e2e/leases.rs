//! Leases end to end (DESIGN.md "Provisioning", Leases): a request with a `retire_at` a few seconds
//! ahead is reminded with an Extend link, extended once through it, and retired at the new time —
//! its server deleted, its request item noted and closed, its requester mailed. A retire during a
//! PCD outage waits for PCD and still ends with nothing left. In-process `gatehouse serve` with
//! the PCD and ServiceNow simulators; a short minimum lease and reminder offset, a fast sweep.

mod support;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use pcd_sim::Faults;
use serde_json::{Value, json};
use support::{Harness, links, page_of};

const APPROVER: &str = "approver@demo.invalid";
const REQUESTER: &str = "ada@example.com";

async fn start(reminders: &[u64], max_extensions: u32) -> Harness {
    let reminders: Vec<Duration> = reminders.iter().map(|s| Duration::from_secs(*s)).collect();
    Harness::start_with_servicenow(|c| {
        c.sweep_interval = Duration::from_millis(200);
        c.leases.min = Duration::from_secs(1);
        c.leases.reminders = reminders;
        c.leases.max_extensions = max_extensions;
    })
    .await
}

/// Orders a VM retiring `secs` from now, approves it and waits until it runs. Answers the request
/// id, the item's sys_id and the server's id.
async fn running_vm(h: &Harness, secs: i64) -> (String, String, String) {
    running_vm_of(h, secs, h.order()).await
}

/// `running_vm` for the intake body `order` (another flavor…).
async fn running_vm_of(h: &Harness, secs: i64, mut order: Value) -> (String, String, String) {
    order["retire_at"] = json!((Timestamp::now() + SignedDuration::from_secs(secs)).to_string());
    let sid = order["source"]["sys_id"].as_str().unwrap().to_string();
    let (status, body) = h.intake(&order).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let mails = h.wait_mails_to(APPROVER, 1).await;
    let mail = mails.iter().find(|m| m.text.contains(&id)).unwrap();
    let resp = h
        .http
        .post(page_of(&links(mail).0))
        .header("accept", "application/json")
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = h.wait_status(&id, "active", Duration::from_secs(20)).await;
    assert_eq!(r["retire_at"], order["retire_at"].as_str().unwrap().parse::<Timestamp>().unwrap().to_string().as_str());
    let server = r["servers"][0]["id"].as_str().unwrap().to_string();
    let on_pcd = h.sim.servers().into_iter().find(|s| s["id"] == server.as_str()).expect("the server runs");
    assert_eq!(on_pcd["metadata"]["gatehouse_retire_at"], r["retire_at"], "the server carries its retire time");
    (id, sid, server)
}

fn reminders(h: &Harness) -> Vec<mail::OutboxMail> {
    h.mails_to(REQUESTER).into_iter().filter(|m| m.subject.starts_with("Reminder:")).collect()
}

fn extend_link(mail: &mail::OutboxMail) -> String {
    mail.text
        .lines()
        .find_map(|l| l.strip_prefix("Extend: "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no Extend link in {}", mail.text))
}

async fn call(h: &Harness, method: reqwest::Method, link: &str) -> (u16, Value) {
    let resp = h.http.request(method, link).header("accept", "application/json").send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn notes(h: &Harness, sys_id: &str) -> Vec<String> {
    h.sn.as_ref().unwrap().work_notes("sc_req_item", sys_id).into_iter().map(|n| n.text).collect()
}

#[tokio::test]
async fn a_lease_is_reminded_extended_once_and_retired_at_the_new_time() {
    let h = start(&[3], 1).await;
    let (id, sid, server) = running_vm(&h, 6).await;
    let first_end: Timestamp = h.request(&id).await["retire_at"].as_str().unwrap().parse().unwrap();

    support::wait_until(Duration::from_secs(20), || !reminders(&h).is_empty()).await;
    let reminder = reminders(&h).remove(0);
    assert!(reminder.text.contains("web-01") && reminder.text.contains(&server), "{}", reminder.text);
    let link = extend_link(&reminder);
    assert!(link.contains("/v1/leases/"), "{link}");

    // Looking changes nothing (mail scanners fetch links); the page offers the button.
    let (status, view) = call(&h, reqwest::Method::GET, &link).await;
    assert_eq!((status, view["link"].as_str()), (200, Some("open")), "{view}");
    let page = h.http.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form method=\"post\">") && page.contains("Extend by"), "{page}");
    assert_eq!(h.request(&id).await["retire_at"], first_end.to_string().as_str());
    // An Extend link is no approval link.
    let token = link.rsplit('/').next().unwrap();
    assert_eq!(h.http.get(h.url(&format!("/v1/approvals/{token}"))).send().await.unwrap().status(), 404);

    let (status, extended) = call(&h, reqwest::Method::POST, &link).await;
    assert_eq!(status, 200, "{extended}");
    let new_end: Timestamp = extended["retire_at"].as_str().unwrap().parse().unwrap();
    assert!(new_end > first_end + SignedDuration::from_secs(5), "{first_end} -> {new_end}");
    assert_eq!(extended["extensions"], 1);
    let on_pcd = h.sim.servers().into_iter().find(|s| s["id"] == server.as_str()).unwrap();
    assert_eq!(on_pcd["metadata"]["gatehouse_retire_at"], extended["retire_at"], "the server shows the new end");
    let (status, again) = call(&h, reqwest::Method::POST, &link).await;
    assert_eq!((status, again["link"].as_str()), (409, Some("used")), "one link extends once: {again}");

    // The reminder before the new end comes with a fresh link, which cannot go past the limit.
    support::wait_until(Duration::from_secs(20), || reminders(&h).len() >= 2).await;
    let second = extend_link(&reminders(&h)[1]);
    let (status, refused) = call(&h, reqwest::Method::POST, &second).await;
    assert_eq!((status, refused["link"].as_str()), (403, Some("limit_reached")), "{refused}");
    assert_eq!(refused["ask"], json!([APPROVER]), "the page says who to ask");

    let r = h.wait_status(&id, "retired", Duration::from_secs(30)).await;
    let retired = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == "active" && e["to"] == "retired")
        .unwrap()
        .clone();
    let retired_at: Timestamp = retired["at"].as_str().unwrap().parse().unwrap();
    assert!(retired_at >= new_end, "retired at {retired_at}, before the extended end {new_end}");
    assert!(h.sim.servers().iter().all(|s| s["id"] != server.as_str()), "the server is deleted");
    assert_eq!(r["servers"][0]["status"], "DELETED");

    let mails = h.wait_mails_to(REQUESTER, 1).await;
    let gone = mails.iter().find(|m| m.subject.starts_with("Retired:")).expect("the requester hears of it");
    assert!(gone.text.contains(&server), "{}", gone.text);
    support::wait_until(Duration::from_secs(20), || notes(&h, &sid).iter().any(|n| n.contains("retired this request")))
        .await;
    let notes = notes(&h, &sid);
    assert!(notes.iter().any(|n| n.contains("extended the lease")), "{notes:#?}");
    let item = h.sn.as_ref().unwrap().record("sc_req_item", &sid).unwrap();
    assert_eq!(item["state"], "3", "the item is closed complete: {item}");
    let (status, ended) = call(&h, reqwest::Method::GET, &second).await;
    assert_eq!((status, ended["link"].as_str()), (410, Some("ended")), "{ended}");
}

#[tokio::test]
async fn a_retire_during_a_pcd_outage_waits_for_pcd_and_leaves_nothing_behind() {
    let h = start(&[], 2).await;
    // Long enough for the server to become ACTIVE first (the simulator builds it in a few seconds).
    let (id, _sid, server) = running_vm(&h, 8).await;
    h.sim.set_faults(Faults { fail_services: vec!["compute".into()], ..Default::default() });
    let end: Timestamp = h.request(&id).await["retire_at"].as_str().unwrap().parse().unwrap();
    // Past the end, and several sweeps later, the request waits for PCD.
    support::wait_until(Duration::from_secs(20), || Timestamp::now() > end + SignedDuration::from_secs(1)).await;
    assert_eq!(h.request(&id).await["status"], "active");
    assert!(h.sim.servers().iter().any(|s| s["id"] == server.as_str()));

    h.sim.set_faults(Faults::default());
    let r = h.wait_status(&id, "retired", Duration::from_secs(20)).await;
    assert!(h.sim.servers().iter().all(|s| s["metadata"]["gatehouse_request_id"] != id.as_str()), "nothing left");
    assert_eq!(
        r["history"].as_array().unwrap().iter().filter(|e| e["from"] == "active" && e["to"] == "retired").count(),
        1
    );
    let mails = h.wait_mails_to(REQUESTER, 1).await;
    assert_eq!(mails.iter().filter(|m| m.subject.starts_with("Retired:")).count(), 1);
}

/// Orders an item in the ServiceNow simulator through its control API, as a catalog would.
async fn order_item(h: &Harness, spec: Value) -> (String, String) {
    let sn = h.sn.as_ref().unwrap();
    let resp = h.http.post(format!("{}/_sim/request_items", sn.base_url())).json(&spec).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let item: Value = resp.json().await.unwrap();
    (item["sys_id"].as_str().unwrap().to_string(), item["number"].as_str().unwrap().to_string())
}

async fn retire(h: &Harness, id: &str, (sys_id, number): &(String, String)) -> (u16, Value) {
    let body = json!({"source": {"system": "servicenow", "sys_id": sys_id, "number": number}});
    let resp = h.post(&format!("/v1/requests/{id}/retire")).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn refused_field(answer: &(u16, Value)) -> (u16, String) {
    (answer.0, answer.1["errors"][0]["field"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn an_approved_decommission_item_of_the_requester_retires_at_once_and_no_other_item_does() {
    let h = start(&[], 2).await;
    // A flavor without disk: the server boots from a volume Gatehouse asked Nova to create.
    let mut order = h.order_with(|item| item.variables.flavor = Some("bfv.medium".into()));
    order["flavor"] = json!("bfv.medium");
    let (id, sid, server) = running_vm_of(&h, 3600, order).await;
    assert_eq!(h.sim.volumes().len(), 1, "the server has its boot volume");
    let ada = json!({"email": REQUESTER, "name": "Ada Lovelace", "user_name": "ada"});
    let decommission = |requested_for: &Value, approval: &str| {
        json!({"requested_for": requested_for, "approval": approval,
               "cat_item": servicenow_sim::DECOMMISSION_CATALOG_ITEM, "short_description": "Decommission web-01"})
    };

    let bob = json!({"email": "bob@example.com", "name": "Bob Babbage", "user_name": "bob"});
    let others = order_item(&h, decommission(&bob, "approved")).await;
    let answer = retire(&h, &id, &others).await;
    assert_eq!(refused_field(&answer), (422, "source.sys_id".into()), "another requester's item: {}", answer.1);
    assert!(answer.1.to_string().contains("bob@example.com"), "{}", answer.1);
    let unapproved = order_item(&h, decommission(&ada, "requested")).await;
    let answer = retire(&h, &id, &unapproved).await;
    assert_eq!(refused_field(&answer), (422, "source.sys_id".into()), "not approved: {}", answer.1);
    let vm_item = order_item(&h, json!({"requested_for": ada, "variables": {"cloud": "demo"}})).await;
    let answer = retire(&h, &id, &vm_item).await;
    assert_eq!(refused_field(&answer), (422, "source.sys_id".into()), "not a decommission item: {}", answer.1);
    let missing = (support::sys_id(), "RITM0099999".to_string());
    assert_eq!(refused_field(&retire(&h, &id, &missing).await), (422, "source.sys_id".into()));
    let approved = order_item(&h, decommission(&ada, "approved")).await;
    let wrong_number = (approved.0.clone(), "RITM0099999".to_string());
    assert_eq!(refused_field(&retire(&h, &id, &wrong_number).await), (422, "source.number".into()));
    assert_eq!(h.request(&id).await["status"], "active", "nothing refused changed anything");
    assert!(h.sim.servers().iter().any(|s| s["id"] == server.as_str()));

    let (status, retired) = retire(&h, &id, &approved).await;
    assert_eq!((status, retired["status"].as_str()), (200, Some("retired")), "{retired}");
    assert_eq!(retired["servers"][0]["status"], "DELETED");
    assert!(h.sim.servers().iter().all(|s| s["id"] != server.as_str()), "the server is deleted at once");
    assert_eq!(h.sim.volumes(), Vec::<Value>::new(), "its boot volume went with it (delete_on_termination)");
    let (status, again) = retire(&h, &id, &approved).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("retired")), "a repeat answers the retired request");
    // Transitions into retired only: the work note written afterwards is a retired → retired entry.
    let retirements = support::steps(&again).iter().filter(|e| e["from"] != "retired" && e["to"] == "retired").count();
    assert_eq!(retirements, 1, "{again}");
    let entry = again["history"].as_array().unwrap().iter().find(|e| e["to"] == "retired").unwrap().clone();
    assert!(entry["note"].as_str().unwrap().contains(&approved.1), "the history names the item: {entry}");

    let mails = h.wait_mails_to(REQUESTER, 1).await;
    assert_eq!(mails.iter().filter(|m| m.subject.starts_with("Retired:")).count(), 1);
    support::wait_until(Duration::from_secs(20), || notes(&h, &sid).iter().any(|n| n.contains(&approved.1))).await;
    let item = h.sn.as_ref().unwrap().record("sc_req_item", &sid).unwrap();
    assert_eq!(item["state"], "3", "the VM's item is closed complete: {item}");
}
