//! Microversions and quota end to end: `gatehouse serve` in front of a PCD simulator whose compute
//! API offers only 2.1, or whose project quota a test lowers through the simulator's control API.

mod support;

use std::time::Duration;

use pcd_sim::{PcdSim, SimConfig};
use serde_json::{Value, json};
use support::{Api, Harness, intake_body, links, page_of, sys_id};

const APPROVER: &str = "approver@demo.invalid";
const REQUESTER: &str = "ada@example.com";

async fn harness(max_microversion: (u32, u32)) -> Harness {
    let config = SimConfig { max_microversion, build_delay: Duration::from_millis(200), ..Default::default() };
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    Harness::start_on(sim, |_| {}).await
}

/// `PUT /_sim/compute` on the simulator, as a test run against its own process would.
async fn set_quota(h: &Harness, instances: i64, cores: i64, ram: i64) {
    let resp = h
        .http
        .put(format!("{}/_sim/compute", h.sim.base_url()))
        .json(&json!({"quota": {"instances": instances, "cores": cores, "ram": ram}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn body(server_name: &str, flavor: &str, count: u32) -> Value {
    let mut b = intake_body(&sys_id());
    b["server_name"] = json!(server_name);
    b["flavor"] = json!(flavor);
    b["count"] = json!(count);
    b
}

/// Intake of `body`, then the approver's Approve link, posted as the page's form would.
async fn submit_and_approve(api: &Api, body: Value) -> String {
    let (status, answer) = api.intake(&body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let wanted = |m: &&mail::OutboxMail| m.text.contains(&id);
    support::wait_until(Duration::from_secs(15), || api.mails_to(APPROVER).iter().any(|m| wanted(&m))).await;
    let mails = api.mails_to(APPROVER);
    let page = page_of(&links(mails.iter().find(wanted).unwrap()).0);
    let resp = api
        .http
        .post(&page)
        .header("accept", "application/json")
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    id
}

#[tokio::test]
async fn a_cloud_whose_compute_api_offers_only_2_1_serves_options_and_provisions() {
    let h = harness((2, 1)).await;
    let (status, options) = h.get_json("/v1/clouds/demo/options").await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["flavors"].as_array().unwrap().len(), 5);
    assert_eq!(h.sim.last_compute_microversion().as_deref(), Some("2.1"));

    let id = submit_and_approve(&h, body("legacy", "bfv.medium", 2)).await;
    let r = h.wait_status(&id, "active", Duration::from_secs(30)).await;
    let names: Vec<_> = r["servers"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, [json!("legacy-1"), json!("legacy-2")]);
    assert_eq!(h.sim.last_compute_microversion().as_deref(), Some("2.1"));
    let calls = h.sim.calls();
    assert_eq!(calls.get("compute.create"), Some(&2), "no create was refused and sent again: {calls:?}");
    for server in h.sim.servers() {
        let asked = &server["request_body"]["server"];
        assert_eq!(asked["metadata"]["gatehouse_request_id"], id.as_str());
        assert_eq!(asked["block_device_mapping_v2"][0]["destination_type"], "volume");
        assert!(asked.get("tags").is_none() && asked.get("description").is_none(), "2.1 takes neither: {asked}");
    }
}

#[tokio::test]
async fn a_request_the_quota_cannot_hold_is_refused_at_intake_and_no_approver_is_asked() {
    let h = harness((2, 104)).await;
    set_quota(&h, 10, 20, 36864).await;
    // 16 of the 20 vCPUs and 32 of the 36 GiB go to a first request.
    let first = submit_and_approve(&h, body("big", "m1.large", 4)).await;
    h.wait_status(&first, "active", Duration::from_secs(30)).await;
    let approver_mails = h.mails_to(APPROVER).len();
    let requester_mails = h.wait_mails_to(REQUESTER, 2).await.len();

    let (status, problem) = h.intake(&body("more", "m1.large", 2)).await;
    assert_eq!(status, 422, "{problem}");
    let errors: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(errors.len(), 2, "{problem}");
    // Fewer servers would fit the vCPUs left: the count is what is wrong there.
    assert_eq!(errors[0].0, "count");
    assert!(errors[0].1.contains("needs 8 vCPUs, 4 of 20 left (16 in use)"), "{}", errors[0].1);
    assert!(!errors[0].1.contains("at most"), "none fits the RAM: {}", errors[0].1);
    // Not one server of the flavor fits the RAM left: the flavor is.
    assert_eq!(errors[1].0, "flavor");
    assert!(
        errors[1].1.contains("needs 16384 MiB of RAM, 4096 of 36864 MiB left (32768 MiB in use)"),
        "{}",
        errors[1].1
    );
    assert!(errors[1].1.contains("not one server of m1.large fits"), "{}", errors[1].1);

    let (status, problem) = h.intake(&body("medium", "m1.medium", 3)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "count", "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("needs 6 vCPUs, 4 of 20 left (16 in use)"), "{message}");
    assert!(message.contains("at most 1 of m1.medium fit"), "{message}");

    // Nobody was asked, nothing was recorded, and what fits still goes through.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.mails_to(APPROVER).len(), approver_mails, "no approver mailed");
    assert_eq!(h.mails_to(REQUESTER).len(), requester_mails, "no mail for a refused request");
    let (status, answer) = h.intake(&body("small", "m1.tiny", 1)).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test]
async fn a_quota_lowered_after_intake_ends_the_request_failed_with_novas_words_before_any_create() {
    let h = harness((2, 104)).await;
    let (status, answer) = h.intake(&body("late", "m1.large", 2)).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    // The project shrinks while the approver reads the mail.
    set_quota(&h, 10, 6, 51200).await;
    let mails = h.wait_mails_to(APPROVER, 1).await;
    let page = page_of(&links(&mails[0]).0);
    let resp =
        h.http.post(&page).header("accept", "application/json").json(&json!({"decision": "approve"})).send().await;
    assert_eq!(resp.unwrap().status(), 200);

    let r = h.wait_status(&id, "failed", Duration::from_secs(30)).await;
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("Quota exceeded for cores: Requested 8, but already used 0 of 6 cores"), "{error}");
    assert_eq!(h.sim.calls().get("compute.create"), None, "nothing was created");
    assert!(h.sim.servers().is_empty());
    let failed = h.wait_mails_to(REQUESTER, 2).await;
    let failed = failed.iter().find(|m| m.subject.starts_with("Failed")).expect("the requester hears of it");
    assert!(failed.text.contains("Quota exceeded for cores"), "{}", failed.text);
}
