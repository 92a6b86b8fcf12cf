//! `pcd-sim`: runs the PCD/OpenStack simulator as its own process.
//!
//! Prints one line `PCD_SIM_URL=http://127.0.0.1:PORT` on stdout once listening, then serves
//! until killed (SIGINT/SIGTERM). Faults are set over HTTP: `PUT /_sim/faults`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use pcd_sim::{PcdSim, SimConfig};

#[derive(Parser, Debug)]
#[command(name = "pcd-sim", about = "Simulator of a Platform9 PCD / OpenStack cloud (Keystone, Nova, Glance, Neutron)")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Time a new server stays in BUILD before it becomes ACTIVE, in milliseconds.
    #[arg(long)]
    build_delay_ms: Option<u64>,
    /// Lifetime of issued Keystone tokens, in seconds.
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
    let mut config = SimConfig::default();
    if let Some(ms) = args.build_delay_ms {
        config.build_delay = Duration::from_millis(ms);
    }
    if let Some(secs) = args.token_ttl_secs {
        config.token_ttl = Duration::from_secs(secs);
    }
    let sim = PcdSim::start(args.listen, config).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "PCD_SIM_URL={}", sim.base_url())?;
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
