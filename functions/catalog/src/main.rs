#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let catalog = runtime::catalog(&config)?;
    // The catalog function also serves the API's OpenAPI document (both are cheap and read-only).
    let routes = gatehouse_catalog::router(catalog, config.api_tokens).merge(http_api::openapi::router());
    http_api::lambda::run(routes.router).await
}
