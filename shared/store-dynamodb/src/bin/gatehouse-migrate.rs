//! `gatehouse-migrate --dynamodb-table NAME`: brings a DynamoDB table written by an earlier version
//! up to date, once, after an upgrade (`cargo run --release -p gatehouse-store-dynamodb --bin
//! gatehouse-migrate -- --dynamodb-table NAME`, as the README says). Today that is the
//! audit export's index (`gsi2`): request and change records written before it existed get its
//! keys, so the export finds them without waiting for their next write. The SQLite store migrates
//! itself at open and needs no such step.
//!
//! A tool of its own rather than a `gatehouse` subcommand: the `gatehouse` binary is also the CI
//! jobs' client and carries no AWS SDK. AWS credentials and region come from the SDK's default
//! chain (the environment, a profile, a role); `AWS_ENDPOINT_URL` points it elsewhere (moto in the
//! tests). Exit 0 when done, 2 on bad arguments, 3 when DynamoDB fails or refuses.

use std::process::ExitCode;

use gatehouse_store_dynamodb::DynamoStore;

const USAGE: &str = "usage: gatehouse-migrate --dynamodb-table NAME";

/// The table named on the command line, or what is wrong with the arguments.
fn table_of(args: &[String]) -> Result<String, String> {
    match args {
        [flag, name] if flag == "--dynamodb-table" && !name.trim().is_empty() => Ok(name.trim().to_string()),
        [flag] if flag.starts_with("--dynamodb-table=") => {
            let name = flag.trim_start_matches("--dynamodb-table=").trim();
            if name.is_empty() { Err("--dynamodb-table names no table".into()) } else { Ok(name.to_string()) }
        }
        [flag, ..] if flag == "--help" || flag == "-h" => Err(String::new()),
        _ => Err(format!("expected --dynamodb-table NAME, got {args:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let table = match table_of(&args) {
        Ok(table) => table,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("gatehouse-migrate: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let store = DynamoStore::from_env(table.clone()).await;
    match store.backfill_export_index().await {
        Ok(done) => {
            println!(
                "gatehouse-migrate: table {table}: {} requests and {} change records added to the audit export's \
                 index (gsi2); {} were written by Gatehouse meanwhile and had it already",
                done.requests, done.changes, done.written_meanwhile
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse-migrate: table {table}: {}", e.chain());
            ExitCode::from(3)
        }
    }
}
