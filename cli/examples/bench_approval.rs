//! Approval click → Nova create sent: the time from the approver's POST until the simulator
//! receives the server create, event-driven through the in-process queue.
//! Target (DESIGN.md): ≤ 100 ms locally. Run: cargo run --release -p gatehouse --example bench_approval

#[path = "support/bench.rs"]
mod bench_support;

use std::time::{Duration, Instant};

use bench_support::{report, start};
use serde_json::json;

#[tokio::main]
async fn main() {
    let b = start(0, |_| {}).await;
    let base = b.running.base_url.clone();
    let outbox = b.running.config.data_dir.join("outbox");
    let mut samples = Vec::new();
    for n in 0..50u64 {
        let body = json!({
            "source": {"system": "servicenow", "number": format!("RITM{n:07}"), "sys_id": format!("{n:032x}")},
            "requester": {"email": "ada@example.com", "name": "Ada Lovelace"},
            "cloud": "demo", "image": "Ubuntu 24.04 LTS", "flavor": "m1.small", "network": "dev-net",
            "server_name": format!("bench-{n}"), "count": 1
        });
        let resp = b.http.post(format!("{base}/v1/requests")).bearer_auth(&b.token).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 202);
        let id = resp.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        // The approver's link, from the mail.
        let link = loop {
            let found = mail::read_outbox(&outbox)
                .unwrap()
                .into_iter()
                .find(|m| m.text.contains(&id) && m.text.contains("Approve: "));
            if let Some(m) = found {
                let line = m.text.lines().find_map(|l| l.strip_prefix("Approve: ")).unwrap().to_string();
                break line.split('?').next().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let creates = b.sim.calls().get("compute.create").copied().unwrap_or(0);
        let t = Instant::now();
        let resp = b
            .http
            .post(&link)
            .header("accept", "application/json")
            .json(&json!({"decision": "approve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        while b.sim.calls().get("compute.create").copied().unwrap_or(0) == creates {
            tokio::task::yield_now().await;
        }
        samples.push(t.elapsed());
    }
    report("approval POST -> Nova create received", samples);
}
