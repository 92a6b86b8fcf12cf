//! Catalog `options` at scale (issue F13): 10,000 images and 500 networks in the PCD simulator,
//! 20 ms added to every simulator call, against `gatehouse serve` in a child process.
//!
//! Prints warm p50/p99, the cold time, the PCD calls of one cold fetch (counted by the simulator)
//! and what shape they took, and the serve process's resident memory (VmRSS / VmHWM from
//! /proc/<pid>/status). Targets (F13): warm p50 ≤ 2 ms; cold ≤ one Keystone call plus one parallel
//! round of pages.
//!
//! Run: cargo run --profile bench -p gatehouse --example bench_catalog_scale
//!
//! The child is this program started again with `--serve-child`: it runs
//! `gatehouse::serve::run`, which is all `gatehouse serve` does, configured from GATEHOUSE_*
//! variables as a site configures it — so it is always the code just built, never a stale binary.

#[path = "support/bench.rs"]
mod bench_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bench_support::report;
use pcd_sim::{Faults, PcdSim, SimConfig, SimImage, SimNetwork};

const IMAGES: usize = 10_000;
const NETWORKS: usize = 500;
const PCD_LATENCY_MS: u64 = 20;
/// Glance's default `api_limit_max`: a larger `limit` is trimmed to it (glance/common/config.py,
/// https://docs.openstack.org/glance/latest/configuration/glance_api.html#DEFAULT.api_limit_max).
const GLANCE_API_LIMIT_MAX: usize = 1000;
const COLD_RUNS: usize = 5;
const WARM_REQUESTS: usize = 2000;
const TOKEN: &str = "bench-servicenow-token-0123456789abcdef";
const LINK_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const EVIDENCE_KEY: &str = "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8=";

fn catalog() -> SimConfig {
    let images = (0..IMAGES)
        .map(|i| SimImage {
            id: format!("1a9e1000-0000-4000-8000-{i:012}"),
            name: format!("image-{i:05}"),
            status: "active".into(),
            min_disk: (i % 4) as u64 * 10,
            min_ram: 0,
        })
        .collect();
    let networks = (0..NETWORKS)
        .map(|i| SimNetwork {
            id: format!("0e771000-0000-4000-8000-{i:012}"),
            name: format!("net-{i:03}"),
            status: "ACTIVE".into(),
            shared: i % 10 == 0,
            external: i == 0,
        })
        .collect();
    SimConfig { images, networks, image_page_size: GLANCE_API_LIMIT_MAX, ..SimConfig::default() }
}

/// `gatehouse serve` as a child process against the simulator.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    async fn start(sim: &PcdSim, dir: &Path, http: &reqwest::Client) -> Serve {
        std::fs::create_dir_all(dir).unwrap();
        let clouds = dir.join("clouds.yaml");
        let entry: String = sim.clouds_yaml_entry().lines().map(|l| format!("    {l}\n")).collect();
        std::fs::write(&clouds, format!("clouds:\n  demo:\n{entry}")).unwrap();
        let listen: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let base = format!("http://{listen}");
        let env = [
            ("GATEHOUSE_API_TOKENS", format!("servicenow:{TOKEN}")),
            ("GATEHOUSE_LINK_KEY", LINK_KEY.into()),
            ("GATEHOUSE_EVIDENCE_KEY", EVIDENCE_KEY.into()),
            ("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL", "true".into()),
            ("GATEHOUSE_PUBLIC_BASE_URL", base.clone()),
            ("GATEHOUSE_CLOUDS_YAML", clouds.display().to_string()),
            ("GATEHOUSE_APPROVERS", "approver@example.com".into()),
            ("GATEHOUSE_MAIL_FROM", "gatehouse@example.com".into()),
            ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ];
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--serve-child", &listen.to_string()])
            .env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the serve child");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            assert!(child.try_wait().unwrap().is_none(), "the serve child ended");
            assert!(Instant::now() < deadline, "serve did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Serve { child, base }
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = |key: &str| -> f64 {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_default();
            line.split_whitespace().nth(1).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    async fn options(&self, http: &reqwest::Client) -> usize {
        let url = format!("{}/v1/clouds/demo/options", self.base);
        let resp = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().len()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

fn serve_child(listen: &str) {
    let args = gatehouse::serve::ServeArgs {
        listen: listen.parse().expect("--serve-child takes an address"),
        data_dir: None,
        demo: false,
        metrics_listen: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Err(e) = runtime.block_on(gatehouse::serve::run(args)) {
        eprintln!("serve child: {e}");
        std::process::exit(3);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, listen] = args.as_slice()
        && flag == "--serve-child"
    {
        return serve_child(listen);
    }
    tokio::runtime::Runtime::new().unwrap().block_on(bench());
}

async fn bench() {
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), catalog()).await.unwrap();
    sim.set_faults(Faults { latency_ms: PCD_LATENCY_MS, ..Default::default() });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let root: PathBuf = std::env::temp_dir().join(format!("gatehouse-bench-scale-{}", std::process::id()));
    println!(
        "catalog: {IMAGES} images, {NETWORKS} networks, 5 flavors; {PCD_LATENCY_MS} ms per simulator call; \
         Glance pages of up to {GLANCE_API_LIMIT_MAX}"
    );

    // Cold: a fresh serve each time (no token, no cache), as after a restart or a Lambda cold start.
    let mut cold = Vec::new();
    let mut cold_calls = BTreeMap::new();
    let mut cold_image_queries = Vec::new();
    let mut body_bytes = 0;
    for run in 0..COLD_RUNS {
        let serve = Serve::start(&sim, &root.join(format!("cold-{run}")), &http).await;
        http.get(format!("{}/healthz", serve.base)).send().await.unwrap();
        let before = sim.calls();
        let queries_before = sim.image_list_queries().len();
        let t = Instant::now();
        body_bytes = serve.options(&http).await;
        cold.push(t.elapsed());
        cold_calls = delta(&sim.calls(), &before);
        cold_image_queries = sim.image_list_queries().split_off(queries_before);
    }
    report("options cold (fresh serve: no token, no cache)", cold.clone());
    println!("options answer: {:.1} MiB", body_bytes as f64 / (1024.0 * 1024.0));
    println!("PCD calls of one cold fetch: {cold_calls:?}");
    let count = |prefix: &str| cold_calls.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<u64>();
    let keystone = count("identity.");
    let image_pages = cold_calls.get("image.list").copied().unwrap_or(0);
    let flavor_pages = cold_calls.get("compute.flavors").copied().unwrap_or(0);
    let network_pages = cold_calls.get("network.list").copied().unwrap_or(0);
    // Images, flavors and networks are fetched side by side; each list follows its own pages one
    // after another (Glance pages by marker: a page's address is known only from the one before).
    // Images are paged from both ends of one order at once (oldest and newest first, told apart
    // by `sort_dir`): their sequential rounds are the longer of the two chains, not the page count.
    let oldest_first =
        cold_image_queries.iter().filter(|q| q.iter().any(|(k, v)| k == "sort_dir" && v == "asc")).count() as u64;
    let newest_first = cold_image_queries.len() as u64 - oldest_first;
    let image_rounds = oldest_first.max(newest_first);
    let rounds = image_rounds.max(flavor_pages).max(network_pages);
    let floor = Duration::from_millis(PCD_LATENCY_MS * (keystone + rounds));
    println!(
        "cold shape: {keystone} Keystone call(s), then {rounds} sequential round(s) of pages \
         (images {image_pages} page(s), {oldest_first} oldest-first and {newest_first} newest-first side by side, \
         so {image_rounds} in sequence; flavors {flavor_pages}, \
         networks {network_pages}; side by side); \
         latency floor {} ms",
        floor.as_millis()
    );
    println!(
        "one Keystone + one parallel round of pages: {}",
        if keystone <= 1 && rounds <= 1 {
            "yes".to_string()
        } else {
            format!("NO ({keystone} Keystone + {rounds} sequential rounds)")
        }
    );

    // Warm: one serve, cache filled.
    let serve = Serve::start(&sim, &root.join("warm"), &http).await;
    let (rss_idle, _) = serve.memory();
    serve.options(&http).await;
    let (rss_filled, _) = serve.memory();
    let before = sim.calls();
    let mut warm = Vec::with_capacity(WARM_REQUESTS);
    for _ in 0..WARM_REQUESTS {
        let t = Instant::now();
        serve.options(&http).await;
        warm.push(t.elapsed());
    }
    report("options warm", warm);
    // The same cache behind a small answer: what the request costs without the 10,000 images.
    let flavors = format!("{}/v1/clouds/demo/flavors", serve.base);
    let mut small = Vec::with_capacity(WARM_REQUESTS);
    for _ in 0..WARM_REQUESTS {
        let t = Instant::now();
        let resp = http.get(&flavors).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        small.push(t.elapsed());
    }
    report("flavors warm (same cache, small answer)", small);
    println!("PCD calls of {WARM_REQUESTS} warm requests: {:?}", delta(&sim.calls(), &before));
    let (rss, hwm) = serve.memory();
    println!(
        "serve RSS (child pid {}): {rss_idle:.1} MiB idle, {rss_filled:.1} MiB with the catalog cached, \
         {rss:.1} MiB after the warm run (peak VmHWM {hwm:.1} MiB)",
        serve.child.id()
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&root);
}
