#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    http_api::lambda::run(gatehouse_approval::router(services).router).await
}
