//! `gitlab-sim`: runs the GitLab API simulator as its own process.
//!
//! Prints one line `GITLAB_SIM_URL=http://127.0.0.1:PORT` on stdout once listening, then serves
//! until killed (SIGINT/SIGTERM). Records are seeded and faults set over HTTP under `/_sim/`; ID
//! tokens for its jobs come from `GET /_sim/id_token?job_id=N&aud=A`, verifiable with the JWKS at
//! `/oauth/discovery/keys`.

use std::net::SocketAddr;

use clap::Parser;
use gitlab_sim::{GitLabSim, GitLabSimConfig};

#[derive(Parser, Debug)]
#[command(name = "gitlab-sim", about = "Simulator of the GitLab REST API v4 subset Gatehouse uses")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The token API calls must carry in PRIVATE-TOKEN (default: the simulator's demo token).
    #[arg(long, env = "GITLAB_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seed the demo project, merge request, both pipelines with their manual verify jobs, and
    /// the blocked deployment.
    #[arg(long)]
    demo: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    sim_server::init_tracing();
    let args = Args::parse();
    let mut config = GitLabSimConfig::default();
    if let Some(token) = args.token {
        config.token = token;
    }
    let sim = GitLabSim::start(args.listen, config).await?;
    if args.demo {
        sim.seed_demo();
    }
    sim_server::announce("GITLAB_SIM_URL", &sim.base_url())?;
    sim_server::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
