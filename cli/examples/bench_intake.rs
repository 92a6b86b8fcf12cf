//! Intake throughput on the SQLite store: concurrent POST /v1/requests with distinct sys_ids for a
//! few seconds. Target (DESIGN.md): ≥ 2,000 requests/s on 2 cores.
//! Run: cargo run --profile bench -p gatehouse --example bench_intake [-- --three-rule-policy]
//! With `--three-rule-policy`, an approval policy of three rules routes every request to its last
//! rule (the two before are checked and do not match): one stage of three approvers, quorum 2, so
//! each request writes three links and mails instead of one.

#[path = "support/bench.rs"]
mod bench_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bench_support::{report, start};
use serde_json::json;

const CLIENTS: usize = 32;
const SECONDS: u64 = 5;

const THREE_RULES: &str = "groups:
  platform: [ops1@example.com, ops2@example.com, ops3@example.com]
  security: [sec1@example.com, sec2@example.com]
rules:
  - name: small-dev
    when: {cloud: [dev], max_vcpus: 1, max_count: 1}
    auto_approve: true
  - name: large
    when: {min_vcpus: 8, metadata: {tier: [gold, silver]}}
    stages: [{group: platform, quorum: 1}, {group: security, quorum: 2}]
  - name: default
    stages: [{group: platform, quorum: 2}]
";

#[tokio::main]
async fn main() {
    let policy = std::env::args().any(|a| a == "--three-rule-policy");
    let b = Arc::new(
        start(0, |c| {
            if policy {
                let parsed = domain::approvals::ApprovalPolicy::parse(THREE_RULES).expect("the bench policy parses");
                c.approval_policy = Some(Arc::new(parsed));
            }
        })
        .await,
    );
    if policy {
        println!("approval policy: three rules, every request routed to the last (3 approvers, quorum 2)");
    }
    let url = format!("{}/v1/requests", b.running.base_url);
    let seq = Arc::new(AtomicU64::new(0));
    // Warm the catalog cache and the connections.
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (b, url, seq) = (b.clone(), url.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let body = json!({
                    "source": {"system": "servicenow", "number": format!("RITM{n:07}"), "sys_id": format!("{n:032x}")},
                    "requester": {"email": "ada@example.com", "name": "Ada Lovelace"},
                    "cloud": "demo", "image": "Ubuntu 24.04 LTS", "flavor": "m1.small", "network": "dev-net",
                    "server_name": "web-01", "count": 1
                });
                let t = Instant::now();
                let resp = b.http.post(&url).bearer_auth(&b.token).json(&body).send().await.unwrap();
                assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "intake: {} requests in {elapsed:.1} s with {CLIENTS} clients = {:.0} requests/s",
        all.len(),
        all.len() as f64 / elapsed
    );
    report("intake latency", all);
}
