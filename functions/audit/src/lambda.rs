//! The Lambda start-up of `audit` (`Handler: audit`): configuration and services once per cold
//! start, then the routes.

pub async fn run() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = lambda_support::config().await?;
    let services = lambda_support::services(&config).await?;
    http_api::lambda::run(crate::router(services, config.api_tokens).router).await
}
