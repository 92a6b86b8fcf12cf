//! `oidc-sim`: runs the OpenID provider simulator as its own process.
//!
//! Prints one line `OIDC_SIM_URL=http://127.0.0.1:PORT` (its issuer) on stdout once listening,
//! then serves until killed (SIGINT/SIGTERM). Clients and users can be added over HTTP under
//! `/_sim/` (see the library's documentation).

use std::net::SocketAddr;

use clap::Parser;
use oidc_sim::{OidcClient, OidcSim, OidcSimConfig};

#[derive(Parser, Debug)]
#[command(name = "oidc-sim", about = "Simulator of an OpenID Connect provider (code flow + PKCE, sign-in form)")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The issuer to publish (default: the URL it listens on).
    #[arg(long)]
    issuer: Option<String>,
    /// The client's id (default: the demo's `gatehouse`).
    #[arg(long, env = "OIDC_SIM_CLIENT_ID")]
    client_id: Option<String>,
    /// The client's secret (default: the demo's).
    #[arg(long, env = "OIDC_SIM_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A redirect URI to register for the client (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    sim_server::init_tracing();
    let args = Args::parse();
    let mut config = OidcSimConfig { issuer: args.issuer, ..OidcSimConfig::default() };
    if args.client_id.is_some() || args.client_secret.is_some() || !args.redirect_uris.is_empty() {
        let default = &config.clients[0];
        config.clients = vec![OidcClient::new(
            args.client_id.as_deref().unwrap_or(&default.client_id),
            args.client_secret.as_deref().unwrap_or(&default.client_secret),
            args.redirect_uris,
        )];
    }
    let sim = OidcSim::start(args.listen, config).await?;
    sim_server::announce("OIDC_SIM_URL", &sim.issuer())?;
    sim_server::shutdown_signal().await;
    sim.stop().await;
    Ok(())
}
