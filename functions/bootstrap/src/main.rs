//! The one Lambda bootstrap. `sam build` compiles the workspace once into this binary and ships it
//! as every function's `bootstrap`; Lambda hands a custom runtime its function's `Handler` setting
//! as `_HANDLER`, and that picks the function's start-up (each in `functions/<name>/src/lambda.rs`).
//! One build and one link instead of nine (see infra/aws/Makefile).

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every handler name template.yaml may give, with its start-up.
const HANDLERS: [&str; 9] =
    ["catalog", "intake", "approval", "audit", "change-gate", "servicenow-webhook", "provision", "sender", "sweeper"];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "catalog" => catalog::lambda::run().await,
        "intake" => intake::lambda::run().await,
        "approval" => approval::lambda::run().await,
        "audit" => audit::lambda::run().await,
        "change-gate" => change_gate::lambda::run().await,
        "servicenow-webhook" => servicenow_webhook::lambda::run().await,
        "provision" => provision::lambda::run().await,
        "sender" => sender::lambda::run().await,
        "sweeper" => sweeper::lambda::run().await,
        other => Err(format!("unknown Handler {other:?} (_HANDLER): expected one of {}", HANDLERS.join(", ")).into()),
    }
}
