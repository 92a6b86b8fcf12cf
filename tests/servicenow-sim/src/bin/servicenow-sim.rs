//! `servicenow-sim`: runs the ServiceNow Table API simulator as its own process.
//!
//! Prints one line `SERVICENOW_SIM_URL=http://127.0.0.1:PORT` on stdout once listening, then
//! serves until killed (SIGINT/SIGTERM). Faults are set over HTTP: `PUT /_sim/faults`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use servicenow_sim::{SnSim, SnSimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "servicenow-sim",
    about = "Simulator of the ServiceNow Table API (sc_req_item, change_request, OAuth)"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Lifetime (`expires_in`) of issued OAuth tokens, in seconds.
    #[arg(long)]
    token_ttl_secs: Option<u64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = SnSimConfig::default();
    if let Some(secs) = args.token_ttl_secs {
        config.token_ttl = Duration::from_secs(secs);
    }
    let sim = SnSim::start(args.listen, config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "SERVICENOW_SIM_URL={}", sim.base_url())?;
        out.flush()?;
    }
    shutdown_signal().await;
    sim.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
