//! Catalog `options` latency at the process, warm and cold, with every PCD call taking 20 ms.
//! Targets (DESIGN.md): warm p50 ≤ 2 ms, p99 ≤ 10 ms; cold ≤ one Keystone round trip plus one
//! parallel PCD round (about 45 ms). Run: cargo run --release -p gatehouse --example bench_catalog

#[path = "support/bench.rs"]
mod bench_support;

use std::time::{Duration, Instant};

use bench_support::{report, start};

const PCD_LATENCY_MS: u64 = 20;

#[tokio::main]
async fn main() {
    // Cold: a fresh process state each time (no token, no cache), as after a Lambda cold start.
    let mut cold = Vec::new();
    for _ in 0..30 {
        let b = start(PCD_LATENCY_MS, |_| {}).await;
        let url = format!("{}/v1/clouds/demo/options", b.running.base_url);
        // Open the HTTP connection first, so only the catalog work is timed.
        b.http.get(format!("{}/healthz", b.running.base_url)).send().await.unwrap();
        let t = Instant::now();
        let resp = b.http.get(&url).bearer_auth(&b.token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        cold.push(t.elapsed());
    }
    report(&format!("options cold (PCD {PCD_LATENCY_MS} ms per call)"), cold);

    // Cold cache, warm Keystone token: the cache expires every time, the token is reused.
    let b = start(PCD_LATENCY_MS, |c| c.catalog_ttl = Duration::from_nanos(1)).await;
    let url = format!("{}/v1/clouds/demo/options", b.running.base_url);
    b.http.get(&url).bearer_auth(&b.token).send().await.unwrap().bytes().await.unwrap();
    let mut cold_cache = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        b.http.get(&url).bearer_auth(&b.token).send().await.unwrap().bytes().await.unwrap();
        cold_cache.push(t.elapsed());
    }
    report("options cold cache, warm token", cold_cache);

    // Warm: one process, cache filled.
    let b = start(PCD_LATENCY_MS, |_| {}).await;
    let url = format!("{}/v1/clouds/demo/options", b.running.base_url);
    b.http.get(&url).bearer_auth(&b.token).send().await.unwrap().bytes().await.unwrap();
    let mut warm = Vec::new();
    for _ in 0..5000 {
        let t = Instant::now();
        let resp = b.http.get(&url).bearer_auth(&b.token).send().await.unwrap();
        resp.bytes().await.unwrap();
        warm.push(t.elapsed());
    }
    report("options warm", warm);
    let calls = b.sim.calls();
    println!(
        "PCD calls for 5001 warm requests: identity.auth={:?} compute.flavors={:?}",
        calls.get("identity.auth"),
        calls.get("compute.flavors")
    );
}
