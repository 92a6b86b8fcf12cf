//! `pcd-sim`: runs the PCD/OpenStack simulator as its own process.
//!
//! Prints one line `PCD_SIM_URL=http://127.0.0.1:PORT` on stdout once listening, then serves
//! until killed (SIGINT/SIGTERM). Faults are set over HTTP: `PUT /_sim/faults`; the compute
//! API's maximum microversion and quota with `PUT /_sim/compute`.

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
    /// The highest compute microversion to advertise and accept, from 2.1 (default: 2.104, as the
    /// published samples). Changeable later with `PUT /_sim/compute`.
    #[arg(long, value_parser = microversion)]
    max_microversion: Option<(u32, u32)>,
}

fn microversion(raw: &str) -> Result<(u32, u32), String> {
    raw.split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .filter(|mv| *mv >= (2, 1))
        .ok_or_else(|| format!("{raw:?} is not a compute microversion from 2.1 (like 2.1 or 2.79)"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    sim_server::init_tracing();
    let args = Args::parse();
    let mut config = SimConfig::default();
    if let Some(ms) = args.build_delay_ms {
        config.build_delay = Duration::from_millis(ms);
    }
    if let Some(secs) = args.token_ttl_secs {
        config.token_ttl = Duration::from_secs(secs);
    }
    if let Some(mv) = args.max_microversion {
        config.max_microversion = mv;
    }
    let sim = PcdSim::start(args.listen, config).await?;
    sim_server::announce("PCD_SIM_URL", &sim.base_url())?;
    sim_server::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
