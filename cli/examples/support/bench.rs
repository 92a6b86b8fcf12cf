// Shared by the benchmark programs (included with `#[path]`).
#![allow(dead_code)]

use std::time::Duration;

use gatehouse::serve::{Running, demo_config, start_with};
use pcd_sim::{Faults, PcdSim, SimConfig};
use tokio::net::TcpListener;

pub struct Bench {
    pub sim: PcdSim,
    pub running: Running,
    pub token: String,
    pub http: reqwest::Client,
}

pub async fn start(latency_ms: u64, tune: impl FnOnce(&mut domain::config::Config)) -> Bench {
    // Glance answers up to the client's `limit` per page, as a real one does (the simulator's
    // default of 2 exists to make the tests follow `next` links).
    let config = SimConfig { image_page_size: 1000, ..SimConfig::default() };
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    sim.set_faults(Faults { latency_ms, ..Default::default() });
    start_on(sim, tune).await
}

pub async fn start_on(sim: PcdSim, tune: impl FnOnce(&mut domain::config::Config)) -> Bench {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-bench-{}", domain::model::RequestId::generate()));
    let (mut config, token) = demo_config(&sim, dir, addr).unwrap();
    tune(&mut config);
    let running = start_with(listener, config, Some(token.clone()), Default::default(), false).await.unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).timeout(Duration::from_secs(30)).build().unwrap();
    Bench { sim, running, token, http }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
}
