//! `gatehouse serve`: every function's routes on one axum server, with an embedded store. With
//! `--demo` it needs no configuration: the outside systems are simulated in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use domain::catalog::Catalog;
use domain::config::{ApiTokens, Approvers, Config, MailTransport, Settings};
use tokio::net::TcpListener;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the SQLite store and the mail outbox.
    #[arg(long, default_value = ".gatehouse")]
    pub data_dir: PathBuf,
    /// Simulate every outside system in-process and need no configuration.
    #[arg(long)]
    pub demo: bool,
}

/// A started server: where it listens and what a client needs to talk to it.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub api_token: Option<String>,
    pub config: Config,
    /// Simulators kept alive for the server's lifetime (demo mode).
    _sims: Vec<pcd_sim::PcdSim>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn wait(self) -> Result<(), BoxError> {
        self.server.await??;
        Ok(())
    }
}

async fn healthz() -> &'static str {
    "ok"
}

fn random_token() -> String {
    domain::token::ApprovalToken::generate().expose().to_string()
}

/// Builds the configuration the demo runs with: no environment needed.
async fn demo_config(args: &ServeArgs, listener_addr: SocketAddr) -> Result<(Config, String, Vec<pcd_sim::PcdSim>), BoxError> {
    let sim = pcd_sim::PcdSim::start("127.0.0.1:0".parse()?, pcd_sim::SimConfig::default()).await?;
    std::fs::create_dir_all(&args.data_dir)?;
    let clouds_yaml = args.data_dir.join("clouds.yaml");
    std::fs::write(&clouds_yaml, format!("clouds:\n  demo:\n{}", indent(&sim.clouds_yaml_entry(), 4)))?;
    let token = random_token();
    let config = Config {
        api_tokens: ApiTokens::new([&token]),
        public_base_url: format!("http://{listener_addr}"),
        clouds_yaml,
        data_dir: args.data_dir.clone(),
        catalog_ttl: std::time::Duration::from_secs(60),
        pcd_timeout: std::time::Duration::from_secs(10),
        approval_ttl: std::time::Duration::from_secs(48 * 3600),
        max_count: 10,
        approvers: Approvers { default: vec!["approver@demo.invalid".into()], by_cloud: Default::default() },
        mail_from: "gatehouse@demo.invalid".into(),
        mail_transport: MailTransport::Outbox { dir: args.data_dir.join("outbox") },
        provision_wait: std::time::Duration::from_secs(60),
        provision_deadline: std::time::Duration::from_secs(15 * 60),
        lease: std::time::Duration::from_secs(120),
        boot_volume_gb: 20,
        sweep_interval: std::time::Duration::from_secs(60),
    };
    println!("PCD simulator (cloud \"demo\"): {}", sim.base_url());
    Ok((config, token, vec![sim]))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// Starts the server and returns once it is listening.
pub async fn start(args: ServeArgs) -> Result<Running, BoxError> {
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let (config, api_token, sims) = if args.demo {
        let (c, t, s) = demo_config(&args, addr).await?;
        (c, Some(t), s)
    } else {
        let mut settings_data_dir = None;
        if args.data_dir != PathBuf::from(".gatehouse") {
            settings_data_dir = Some(args.data_dir.display().to_string());
        }
        let settings = Settings::new(move |k| {
            if k == "GATEHOUSE_DATA_DIR" && settings_data_dir.is_some() {
                return settings_data_dir.clone();
            }
            std::env::var(k).ok()
        });
        (Config::load(&settings)?, None, Vec::new())
    };

    let clouds = pcd::CloudsFile::load(&config.clouds_yaml)?;
    let cloud = Arc::new(pcd::Pcd::new(clouds, config.pcd_timeout)?);
    let catalog = Arc::new(Catalog::new(cloud, config.catalog_ttl));

    let app = Router::new()
        .route("/healthz", get(healthz))
        .merge(gatehouse_catalog::router(catalog.clone(), config.api_tokens.clone()))
        .fallback(http_api::problem::not_found);

    let base_url = format!("http://{addr}");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running { addr, base_url, api_token, config, _sims: sims, server })
}

/// `gatehouse serve`: start, print what a user needs, serve until stopped.
pub async fn run(args: ServeArgs) -> Result<(), BoxError> {
    let running = start(args).await?;
    println!("Gatehouse listening on {}", running.base_url);
    if let Some(token) = &running.api_token {
        println!("GATEHOUSE_TOKEN={token}");
        println!("Demo approver: approver@demo.invalid");
        println!("Try: curl -H \"Authorization: Bearer $GATEHOUSE_TOKEN\" {}/v1/clouds/demo/options", running.base_url);
    }
    tokio::select! {
        r = running.wait() => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
