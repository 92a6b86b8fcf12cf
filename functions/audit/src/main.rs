// This function as a binary of its own (`cargo lambda watch`). Deployed, every function runs
// functions/bootstrap instead, which calls the same start-up (src/lambda.rs) chosen by the Handler.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    gatehouse_audit::lambda::run().await
}
