use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Approval gate and audit trail for VMs and deploys")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every function in one process (single box, demo, tests).
    Serve(gatehouse::serve::ServeArgs),
    /// CI change gate client for GitLab jobs: request | verify | report (see `gatehouse ci --help`).
    Ci(gatehouse::ci::CiArgs),
    /// The auditor's client: verify every history chain of a period, or export it (see `gatehouse audit --help`).
    Audit(gatehouse::audit::AuditArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            http_api::telemetry::init(false);
            match gatehouse::serve::run(args).await {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gatehouse serve: {e}");
                    std::process::ExitCode::from(3)
                }
            }
        }
        Command::Ci(args) => gatehouse::ci::run(args).await,
        Command::Audit(args) => gatehouse::audit::run(args).await,
    }
}
