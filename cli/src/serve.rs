//! `gatehouse serve`: every function's routes on one axum server, with the SQLite store and the
//! workers that Lambda gets from DynamoDB streams and schedules running in-process. With `--demo`
//! it needs no configuration: the outside systems are simulated in-process.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::config::{
    ApiTokens, ApproverProof, Approvers, Config, GitLabSettings, MailTransport, OidcSettings, Secret, ServiceNowAuth,
    ServiceNowSettings, Settings,
};
use domain::model::{RequestId, Status};
use domain::ports::{Itsm, Mailer};
use domain::usecases::gate::ChangeGate;
use domain::usecases::{Services, Signals};
use http_api::RouteSpec;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

use crate::dev;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the SQLite store and the mail outbox [default: .gatehouse, or GATEHOUSE_DATA_DIR]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Simulate every outside system in-process and need no configuration.
    #[arg(long)]
    pub demo: bool,
    /// Serve Prometheus metrics at /metrics on this address (off by default; unauthenticated, so
    /// bind it where only the scraper reaches).
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Wakes the in-process workers after a write: the mail sender, and the provisioning queue (what
/// the DynamoDB stream does on AWS).
struct LocalSignals {
    outbox: Notify,
    provision: mpsc::UnboundedSender<RequestId>,
}

impl Signals for LocalSignals {
    fn messages_owed(&self) {
        self.outbox.notify_one();
    }
    fn approved(&self, id: &RequestId) {
        let _ = self.provision.send(id.clone());
    }
}

/// Runs provisioning for each request sent to it, one run per request at a time.
fn spawn_provisioner(services: Services, worker: String, mut queue: mpsc::UnboundedReceiver<RequestId>) {
    let in_flight: Arc<Mutex<HashSet<RequestId>>> = Default::default();
    tokio::spawn(async move {
        while let Some(id) = queue.recv().await {
            if !in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone()) {
                continue;
            }
            let (services, worker, in_flight) = (services.clone(), worker.clone(), in_flight.clone());
            tokio::spawn(async move {
                match services.provision(&id, &worker, services.config.provision_wait).await {
                    Ok(progress) => tracing::debug!(request = %id, ?progress, "provisioning run ended"),
                    Err(e) => {
                        tracing::error!(request = %id, error = %e.chain(), "provisioning run failed; the sweeper retries")
                    }
                }
                in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            });
        }
    });
}

/// Runs the sweeper on its interval; the provisioning work it finds goes to the queue.
fn spawn_sweeper(services: Services, gate: Option<Arc<ChangeGate>>, queue: mpsc::UnboundedSender<RequestId>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(services.config.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match services.sweep(jiff::Timestamp::now()).await {
                Ok(sweep) => {
                    for id in sweep.to_provision {
                        let _ = queue.send(id);
                    }
                }
                Err(e) => tracing::error!(error = %e.chain(), "sweep failed"),
            }
            // Changes whose window opened, or that wait for a deployment to approve.
            if let Some(gate) = &gate
                && let Err(e) = gate.sweep(jiff::Timestamp::now()).await
            {
                tracing::error!(error = %e.chain(), "change gate sweep failed");
            }
        }
    });
}

/// After a restart, work that was under way resumes: every approved or provisioning request.
async fn resume(services: &Services, queue: &mpsc::UnboundedSender<RequestId>) -> Result<usize, BoxError> {
    let mut n = 0;
    for status in [Status::Approved, Status::Provisioning] {
        for request in services.store.due(status, jiff::Timestamp::MAX, usize::MAX >> 1).await? {
            let _ = queue.send(request.id);
            n += 1;
        }
    }
    Ok(n)
}

/// A started server: where it listens and what a client needs to talk to it.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub api_token: Option<String>,
    pub config: Config,
    pub services: Services,
    /// The simulated outside systems (demo mode), alive as long as the server.
    pub sims: Simulators,
    /// Every API route with its access (the demo's /dev/ pages are not part of the API).
    pub routes: Vec<RouteSpec>,
    /// Where `/metrics` is served (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn wait(self) -> Result<(), BoxError> {
        self.server.await??;
        Ok(())
    }
}

/// The configuration the demo runs with: nothing to set up. Tests start from it too.
pub fn demo_config(sim: &pcd_sim::PcdSim, data_dir: PathBuf, listen: SocketAddr) -> Result<(Config, String), BoxError> {
    std::fs::create_dir_all(&data_dir)?;
    let clouds_yaml = data_dir.join("clouds.yaml");
    std::fs::write(&clouds_yaml, sim.clouds_yaml("demo"))?;
    let token = domain::token::ApprovalToken::generate().expose().to_string();
    let change_policy = demo_change_policy(&data_dir)?;
    let evidence_key = demo_evidence_key(&data_dir)?;
    let config = Config {
        api_tokens: ApiTokens::all_scopes(&token),
        public_base_url: format!("http://{listen}"),
        clouds_yaml,
        catalog_ttl: Duration::from_secs(60),
        pcd_timeout: Duration::from_secs(10),
        approval_ttl: Duration::from_secs(48 * 3600),
        max_count: 10,
        approvers: Approvers { default: vec!["approver@demo.invalid".into()], by_cloud: Default::default() },
        mail_from: "gatehouse@demo.invalid".into(),
        mail_transport: MailTransport::Outbox { dir: data_dir.join("outbox") },
        data_dir,
        provision_wait: Duration::from_secs(60),
        provision_deadline: Duration::from_secs(15 * 60),
        lease: Duration::from_secs(120),
        boot_volume_gb: 20,
        sweep_interval: Duration::from_secs(60),
        // GATEHOUSE_MESSAGE_MAX_ATTEMPTS, as outside the demo (default 20).
        message_max_attempts: domain::config::message_max_attempts(&domain::config::Settings::from_env())?,
        // Leases as outside the demo: GATEHOUSE_DEFAULT_LEASE_DAYS, _MAX_LEASE_DAYS, _MIN_LEASE_SECS,
        // GATEHOUSE_LEASE_REMINDERS and GATEHOUSE_MAX_EXTENSIONS.
        leases: domain::config::LeaseSettings::load(&domain::config::Settings::from_env())?,
        // GATEHOUSE_APPROVAL_POLICY when set; else one stage of the demo approver.
        approval_policy: domain::config::approval_policy(&domain::config::Settings::from_env())?,
        // GATEHOUSE_AUDITORS when set (they sign in to /audit/ where sign-in is configured).
        auditors: domain::config::auditors(&domain::config::Settings::from_env())?,
        servicenow: None,
        gitlab: None,
        change_policy: Some(change_policy),
        // Optional even in the demo, so ServiceNow's signed callbacks can be tried.
        webhook_secret: std::env::var("GATEHOUSE_WEBHOOK_SECRET").ok().filter(|s| s.len() >= 32).map(Secret::new),
        table: None,
        allow_insecure_tls: false,
        // A new key each start: links mailed before a restart stop working, which is fine for a demo.
        link_key: domain::token::LinkKey::generate(),
        evidence_key,
        // The demo signs approvers in only when GATEHOUSE_OIDC_ISSUER is set (see `start`).
        approver_proof: domain::config::ApproverProof::LinkOnly,
    };
    Ok((config, token))
}

/// DESIGN.md's built-in demo policy: production takes deploys at any time, from protected refs, and
/// a `default:` entry answers for every other environment.
const DEMO_CHANGE_POLICY: &str = "# The demo's built-in change policy (GATEHOUSE_CHANGE_POLICY replaces it).
environments:
  production:
    timezone: UTC
    windows:
      - {days: [mon, tue, wed, thu, fri, sat, sun], start: \"00:00\", end: \"24:00\"}
    protected: true
default:
  timezone: UTC
";

/// `GATEHOUSE_EVIDENCE_KEY` or `_FILE` when set; else a key made at the first start and kept beside
/// the data folder (`<data folder>.evidence-key`, never inside it), so the history chains of a
/// restarted demo still verify.
fn demo_evidence_key(data_dir: &std::path::Path) -> Result<domain::evidence::EvidenceKey, BoxError> {
    let settings = Settings::from_env();
    if ["GATEHOUSE_EVIDENCE_KEY", "GATEHOUSE_EVIDENCE_KEY_FILE"].iter().any(|k| settings.optional(k).is_some()) {
        return Ok(domain::config::evidence_key(&settings, data_dir)?);
    }
    let mut name = std::path::absolute(data_dir)?.into_os_string();
    name.push(".evidence-key");
    let path = PathBuf::from(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return domain::evidence::EvidenceKey::from_base64(&text)
            .map_err(|problem| format!("the demo's evidence key {}: {problem}", path.display()).into());
    }
    let key = domain::evidence::EvidenceKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, key.to_base64().as_bytes())?;
    Ok(key)
}

/// `GATEHOUSE_CHANGE_POLICY` when set, else the built-in policy written into the data dir.
fn demo_change_policy(data_dir: &std::path::Path) -> Result<PathBuf, BoxError> {
    if let Some(path) = std::env::var_os("GATEHOUSE_CHANGE_POLICY").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let path = data_dir.join("change-policy.yaml");
    std::fs::write(&path, DEMO_CHANGE_POLICY)?;
    Ok(path)
}

/// Delivers owed messages whenever a write says so, and retries on a short tick.
fn spawn_sender(services: Services, mailer: Arc<dyn Mailer>, itsm: Option<Arc<dyn Itsm>>, wake: Arc<LocalSignals>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = services.deliver_owed(mailer.as_ref(), itsm.as_deref()).await {
                tracing::error!(error = %e.chain(), "outbox sender failed; retrying");
            }
            tokio::select! {
                _ = wake.outbox.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

/// The outside systems `--demo` simulates in-process.
#[derive(Default)]
pub struct Simulators {
    pub pcd: Option<pcd_sim::PcdSim>,
    pub servicenow: Option<servicenow_sim::SnSim>,
    pub gitlab: Option<gitlab_sim::GitLabSim>,
    pub oidc: Option<oidc_sim::OidcSim>,
}

/// The demo signs approvers in only when `GATEHOUSE_OIDC_ISSUER` is set: `sim` starts the OpenID
/// provider simulator (its users approver@demo.invalid and second@demo.invalid, password `demo`);
/// any other value is a real issuer, with `GATEHOUSE_OIDC_CLIENT_ID` and `_CLIENT_SECRET`.
async fn demo_sign_in(config: &mut Config, sims: &mut Simulators) -> Result<(), BoxError> {
    let Some(issuer) = std::env::var("GATEHOUSE_OIDC_ISSUER").ok().filter(|i| !i.trim().is_empty()) else {
        return Ok(());
    };
    let callback = format!("{}/v1/auth/callback", config.public_base_url);
    let settings = if issuer.trim() == "sim" {
        let sim = oidc_sim::OidcSim::start("127.0.0.1:0".parse()?, oidc_sim::OidcSimConfig::default()).await?;
        sim.add_redirect_uri(oidc_sim::demo::CLIENT_ID, &callback);
        let settings = OidcSettings {
            issuer: sim.issuer(),
            client_id: oidc_sim::demo::CLIENT_ID.into(),
            client_secret: Secret::new(oidc_sim::demo::CLIENT_SECRET),
        };
        sims.oidc = Some(sim);
        settings
    } else {
        let need = |k: &str| std::env::var(k).map_err(|_| format!("GATEHOUSE_OIDC_ISSUER is set: {k} is needed too"));
        OidcSettings {
            issuer,
            client_id: need("GATEHOUSE_OIDC_CLIENT_ID")?,
            client_secret: Secret::new(need("GATEHOUSE_OIDC_CLIENT_SECRET")?),
        }
    };
    config.approver_proof = ApproverProof::SignIn(settings);
    Ok(())
}

/// The request item the README's curl walk-through submits, so its write-backs have a home.
pub const DEMO_RITM_SYS_ID: &str = "9d385017c611228701d22104cc95c371";

impl Simulators {
    pub async fn start_demo() -> Result<Simulators, BoxError> {
        let pcd = pcd_sim::PcdSim::start("127.0.0.1:0".parse()?, pcd_sim::SimConfig::default()).await?;
        let servicenow = servicenow_sim::SnSim::start("127.0.0.1:0".parse()?, Default::default()).await?;
        seed_demo_request_item(&servicenow);
        let gitlab = gitlab_sim::GitLabSim::start("127.0.0.1:0".parse()?, Default::default()).await?;
        // Project 4242 acme/shop with MR !7, pipeline 900001 and the manual job 77001 of DESIGN.md.
        gitlab.seed_demo();
        Ok(Simulators { pcd: Some(pcd), servicenow: Some(servicenow), gitlab: Some(gitlab), oidc: None })
    }
}

/// The approved request item the README's curl walk-through submits: Ada Lovelace's web-01 on the
/// demo cloud, ordered from the demo's VM catalog item. Answers its number.
pub fn seed_demo_request_item(sn: &servicenow_sim::SnSim) -> String {
    use servicenow_sim::{ItemVariables, PersonSpec, RequestItemSpec};
    let spec = RequestItemSpec {
        sys_id: Some(DEMO_RITM_SYS_ID.into()),
        short_description: Some("Ada Lovelace: web-01 for a load test".into()),
        ..RequestItemSpec::new(
            PersonSpec::new("ada@example.com", "Ada Lovelace", "ada"),
            ItemVariables::vm("demo", "Ubuntu 24.04 LTS", "m1.small", "dev-net", "web-01", 1),
        )
    };
    sn.create_request_item(&spec).1
}

/// Points the configuration's write-backs at the ServiceNow simulator.
pub fn use_servicenow_sim(config: &mut Config, sn: &servicenow_sim::SnSim) {
    let c = sn.config();
    config.servicenow = Some(ServiceNowSettings {
        // The simulator's seeded decommission item may retire a request at once.
        decommission_items: vec![servicenow_sim::DECOMMISSION_CATALOG_ITEM.into()],
        ..ServiceNowSettings::new(
            sn.base_url(),
            ServiceNowAuth::Basic { user: c.user.clone(), password: Secret::new(c.password.clone()) },
        )
    });
}

/// The demo's GitLab webhook secret (printed at start): what GitLab would send as `X-Gitlab-Token`.
pub const DEMO_GITLAB_WEBHOOK_SECRET: &str = "gitlab-webhook-secret-of-the-demo-0123456789";

/// Points the change gate's GitLab calls at the GitLab simulator.
pub fn use_gitlab_sim(config: &mut Config, gitlab: &gitlab_sim::GitLabSim) {
    config.gitlab = Some(GitLabSettings {
        url: gitlab.base_url(),
        token: Secret::new(gitlab_sim::GitLabSimConfig::default().token),
        ci_audience: "gatehouse".into(),
        // The demo's token holds every scope; ID tokens from the simulator work too.
        ci_allow_static_tokens: true,
        webhook_secret: Some(Secret::new(DEMO_GITLAB_WEBHOOK_SECRET)),
        pipeline_check_after: Duration::from_secs(3600),
    });
}

/// Starts the server from the command line's arguments and returns once it is listening.
pub async fn start(args: ServeArgs) -> Result<Running, BoxError> {
    let metrics_listen = args.metrics_listen;
    let mut running = start_api(args).await?;
    if let Some(addr) = metrics_listen {
        running.metrics_addr = Some(crate::metrics_listen::start(addr, running.services.store.clone()).await?);
    }
    Ok(running)
}

async fn start_api(args: ServeArgs) -> Result<Running, BoxError> {
    // The demo holds a token good for every scope and simulators without credentials: it is for
    // this machine only, so a wider address is refused before anything is bound.
    if args.demo && !args.listen.ip().is_loopback() {
        return Err(format!(
            "serve --demo listens on loopback only (127.0.0.1, ::1): --listen {} would open the demo, \
             its all-scope token and its simulators to the network; use --listen 127.0.0.1:{}",
            args.listen,
            args.listen.port()
        )
        .into());
    }
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    if args.demo {
        let sims = Simulators::start_demo().await?;
        let data_dir = args.data_dir.clone().unwrap_or_else(|| ".gatehouse".into());
        // 0700 when new (the store would do it too, but clouds.yaml is written first).
        store::SqliteStore::create_private_dir(&data_dir)?;
        let (mut config, token) = demo_config(sims.pcd.as_ref().ok_or("no PCD simulator")?, data_dir, addr)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config.clouds_yaml, std::fs::Permissions::from_mode(0o600))?;
        }
        if let Some(sn) = &sims.servicenow {
            use_servicenow_sim(&mut config, sn);
        }
        if let Some(gl) = &sims.gitlab {
            use_gitlab_sim(&mut config, gl);
        }
        let mut sims = sims;
        demo_sign_in(&mut config, &mut sims).await?;
        return start_with(listener, config, Some(token), sims, true).await;
    }
    let data_dir = args.data_dir.clone().map(|d| d.display().to_string());
    let settings = Settings::new(move |k| match (k, &data_dir) {
        ("GATEHOUSE_DATA_DIR", Some(d)) => Some(d.clone()),
        _ => std::env::var(k).ok(),
    });
    start_with(listener, Config::load(&settings)?, None, Simulators::default(), false).await
}

/// Starts the server with a ready configuration (tests build theirs). `demo` mounts /dev/.
pub async fn start_with(
    listener: TcpListener,
    config: Config,
    api_token: Option<String>,
    sims: Simulators,
    demo: bool,
) -> Result<Running, BoxError> {
    let addr = listener.local_addr()?;
    let (provision_tx, provision_rx) = mpsc::unbounded_channel();
    let signals = Arc::new(LocalSignals { outbox: Notify::new(), provision: provision_tx.clone() });
    let store = runtime::store(&config)?;
    let services = runtime::services_with(&config, store.clone(), signals.clone())?;
    let mailer = runtime::mailer(&config)?;
    let itsm = runtime::itsm(&config)?;
    // A stable name across restarts, so a restarted serve resumes its own leases at once.
    let worker =
        format!("serve:{}", std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone()).display());
    spawn_sender(services.clone(), mailer, itsm, signals);
    spawn_provisioner(services.clone(), worker, provision_rx);
    let resumed = resume(&services, &provision_tx).await?;
    if resumed > 0 {
        tracing::info!(resumed, "resuming provisioning after a restart");
    }
    let gate = runtime::change_gate(&config, store.clone())?;
    spawn_sweeper(services.clone(), gate.clone(), provision_tx);

    let mut mounted = http_api::health::router()
        .merge(http_api::openapi::router())
        .merge(catalog::router(services.catalog.clone(), config.api_tokens.clone()))
        .merge(intake::router(services.clone(), config.api_tokens.clone()))
        .merge(audit::router(services.clone(), config.api_tokens.clone()))
        .merge(approval::router(services.clone()));
    if let Some(gate) = gate {
        mounted = mounted
            .merge(change_gate::router(
                gate.clone(),
                config.api_tokens.clone(),
                config.gitlab.as_ref().and_then(|g| g.webhook_secret.clone()),
            ))
            .merge(servicenow_webhook::router(gate, config.api_tokens.clone(), config.webhook_secret.clone()));
    }
    let routes = mounted.specs;
    let mut app = mounted.router;
    if demo {
        app = app.merge(dev::router(&config, store, api_token.clone().unwrap_or_default()));
    }
    let app = app.fallback(http_api::problem::not_found);

    let base_url = format!("http://{addr}");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Running { addr, base_url, api_token, config, services, sims, routes, metrics_addr: None, server })
}

/// `gatehouse serve`: start, print what a user needs, serve until stopped.
pub async fn run(args: ServeArgs) -> Result<(), BoxError> {
    let running = start(args).await?;
    println!("Gatehouse listening on {}", running.base_url);
    if let Some(addr) = running.metrics_addr {
        println!("Metrics (Prometheus): http://{addr}/metrics");
    }
    if let Some(sim) = &running.sims.pcd {
        println!("PCD simulator (cloud \"demo\"): {}", sim.base_url());
    }
    if let Some(sn) = &running.sims.servicenow {
        println!("ServiceNow simulator: {} (approved request item {DEMO_RITM_SYS_ID})", sn.base_url());
    }
    if let Some(oidc) = &running.sims.oidc {
        println!(
            "OpenID provider simulator: {} (approvers sign in: {} or {}, password {})",
            oidc.issuer(),
            oidc_sim::demo::APPROVER_EMAIL,
            oidc_sim::demo::SECOND_EMAIL,
            oidc_sim::demo::PASSWORD
        );
    }
    if let Some(gl) = &running.sims.gitlab {
        println!(
            "GitLab simulator: {} (project 4242 acme/shop, MR !7, pipelines 900001 and 900002 with manual jobs 77001 and 77002)",
            gl.base_url()
        );
        println!("A job's ID token: curl \"{}/_sim/id_token?job_id=77001&aud=gatehouse\"", gl.base_url());
        println!("GitLab webhook secret (X-Gitlab-Token for POST /v1/webhooks/gitlab): {DEMO_GITLAB_WEBHOOK_SECRET}");
    }
    if let Some(token) = &running.api_token {
        println!("Demo API token, good for every scope (servicenow, ci, webhook, audit); for the demo only:");
        println!("GATEHOUSE_TOKEN={token}");
        println!("Demo approver: approver@demo.invalid");
        println!("Demo portal: {}/dev/", running.base_url);
        println!("Outbox: {}/dev/outbox", running.base_url);
        println!("Try: curl -H \"Authorization: Bearer $GATEHOUSE_TOKEN\" {}/v1/clouds/demo/options", running.base_url);
    }
    tokio::select! {
        r = running.wait() => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
