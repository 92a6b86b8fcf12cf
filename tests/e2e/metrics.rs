//! `serve --metrics-listen`: DESIGN.md's figures as a Prometheus scrape, which moves as a request
//! is taken in, approved and built.

mod support;

use std::time::Duration;

use serde_json::json;
use support::process::{ServeProcess, SimProcess};
use support::{intake_body, links, page_of, sys_id};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn scrape(url: &str) -> String {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    resp.text().await.unwrap()
}

/// The value of the sample line `name{labels}` (or `name` alone), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn a_scrape_shows_the_request_its_approval_and_its_build_time() {
    let sim = SimProcess::start(100);
    let metrics = format!("127.0.0.1:{}", free_port());
    let serve = ServeProcess::start(&sim, &[("GATEHOUSE_METRICS_LISTEN", &metrics)]).await;
    let url = format!("http://{metrics}/metrics");

    let before = scrape(&url).await;
    assert!(before.contains("# TYPE gatehouse_approve_to_active_seconds histogram"), "{before}");
    assert_eq!(sample(&before, "gatehouse_decisions_total{decision=\"approved\"}"), None, "{before}");
    assert_eq!(sample(&before, "gatehouse_messages{state=\"dead\"}"), Some(0.0), "{before}");

    let (status, answer) = serve.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let mails = serve.wait_mails_to("approver@example.com", 1).await;
    let page = page_of(&links(&mails[0]).0);
    let resp = serve
        .http
        .post(&page)
        .header("accept", "application/json")
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serve.wait_status(&id, "active", Duration::from_secs(20)).await;

    let after = scrape(&url).await;
    assert!(after.contains("# TYPE gatehouse_requests counter"), "{after}");
    assert_eq!(sample(&after, "gatehouse_requests_total{outcome=\"accepted\"}"), Some(1.0), "{after}");
    assert_eq!(sample(&after, "gatehouse_decisions_total{decision=\"approved\"}"), Some(1.0), "{after}");
    assert_eq!(sample(&after, "gatehouse_approve_to_active_seconds_count"), Some(1.0), "{after}");
    assert!(sample(&after, "gatehouse_approve_to_active_seconds_sum").unwrap() > 0.0, "{after}");

    // Only /metrics is served there, and nothing of the API.
    let other = reqwest::get(format!("http://{metrics}/v1/requests/{id}")).await.unwrap();
    assert_eq!(other.status(), 404);
}
