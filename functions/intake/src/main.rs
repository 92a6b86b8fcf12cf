use std::sync::Arc;

use domain::config::{Config, Settings};
use domain::usecases::NoSignals;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = Config::load(&Settings::from_env())?;
    let services = runtime::services(&config, Arc::new(NoSignals))?;
    http_api::lambda::run(gatehouse_intake::router(services, config.api_tokens)).await
}
