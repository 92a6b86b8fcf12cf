//! The Lambda start-up of `catalog` (`Handler: catalog`): configuration once per cold start, then
//! the catalog routes, the API's OpenAPI document and `GET /healthz`.

pub async fn run() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let catalog = runtime::catalog(&config)?;
    // The catalog function also serves the API's OpenAPI document (both are cheap and read-only).
    let routes =
        crate::router(catalog, config.api_tokens).merge(http_api::openapi::router()).merge(http_api::health::router());
    http_api::lambda::run(routes.router).await
}
