#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let catalog = runtime::catalog(&config)?;
    http_api::lambda::run(gatehouse_catalog::router(catalog, config.api_tokens)).await
}
