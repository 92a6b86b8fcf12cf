//! `servicenow-sim`: runs the ServiceNow Table API simulator as its own process.
//!
//! Prints one line `SERVICENOW_SIM_URL=http://127.0.0.1:PORT` on stdout once listening, then
//! serves until killed (SIGINT/SIGTERM). Faults are set over HTTP: `PUT /_sim/faults`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use servicenow_sim::{SnSim, SnSimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "servicenow-sim",
    about = "Simulator of the ServiceNow Table API (sc_req_item and its catalog, change_request, OAuth)"
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
    sim_server::init_tracing();
    let args = Args::parse();
    let mut config = SnSimConfig::default();
    if let Some(secs) = args.token_ttl_secs {
        config.token_ttl = Duration::from_secs(secs);
    }
    let sim = SnSim::start(args.listen, config).await?;
    sim_server::announce("SERVICENOW_SIM_URL", &sim.base_url())?;
    sim_server::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
