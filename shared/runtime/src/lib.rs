//! The one place configuration becomes adapters. Every function's main.rs and `gatehouse serve`
//! build their dependencies here, once per process.

use std::sync::Arc;

use domain::catalog::Catalog;
use domain::config::Config;
use domain::usecases::{Services, Signals};
use domain::{Error, Result};

/// The SQLite store in the data folder.
pub fn store(config: &Config) -> Result<Arc<store::SqliteStore>> {
    Ok(Arc::new(store::SqliteStore::open(&config.data_dir.join("gatehouse.db"))?))
}

/// The clouds of clouds.yaml behind the catalog cache.
pub fn catalog(config: &Config) -> Result<Arc<Catalog>> {
    let clouds = pcd::CloudsFile::load(&config.clouds_yaml)
        .map_err(|e| Error::internal(format!("cannot read clouds.yaml at {}", config.clouds_yaml.display()), e))?;
    let cloud = Arc::new(pcd::Pcd::new(clouds, config.pcd_timeout)?);
    Ok(Arc::new(Catalog::new(cloud, config.catalog_ttl)))
}

/// The mailer the configuration names (outbox or SMTP).
pub fn mailer(config: &Config) -> Result<Arc<mail::TemplateMailer>> {
    let transport = mail::TemplateMailer::transport_for(&config.mail_transport)?;
    Ok(Arc::new(mail::TemplateMailer::new(&config.mail_from, &config.public_base_url, transport)?))
}

pub fn services(config: &Config, signals: Arc<dyn Signals>) -> Result<Services> {
    services_with(config, store(config)?, signals)
}

pub fn services_with(
    config: &Config,
    store: Arc<dyn domain::ports::Store>,
    signals: Arc<dyn Signals>,
) -> Result<Services> {
    Ok(Services { store, catalog: catalog(config)?, config: Arc::new(config.clone()), signals })
}
