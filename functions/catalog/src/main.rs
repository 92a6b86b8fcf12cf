use std::sync::Arc;

use domain::catalog::Catalog;
use domain::config::{Config, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    http_api::telemetry::init(true);
    let config = Config::load(&Settings::from_env())?;
    let clouds = pcd::CloudsFile::load(&config.clouds_yaml)?;
    let cloud = Arc::new(pcd::Pcd::new(clouds, config.pcd_timeout)?);
    let catalog = Arc::new(Catalog::new(cloud, config.catalog_ttl));
    http_api::lambda::run(gatehouse_catalog::router(catalog, config.api_tokens)).await
}
