//! The one place configuration becomes adapters. Every function's main.rs and `gatehouse serve`
//! build their dependencies here, once per process.

use std::sync::Arc;

use domain::catalog::Catalog;
use domain::changes::ChangeRecords;
use domain::config::{ApproverProof, Config, LeaseSettings, ServiceNowAuth};
use domain::evidence::{SealingChanges, SealingStore};
use domain::policy::ChangePolicy;
use domain::ports::{Itsm, SourceItems};
use domain::signin::IdentityProvider;
use domain::usecases::gate::ChangeGate;
use domain::usecases::{Services, Signals};
use domain::{Error, Result};

/// The SQLite store in the data folder.
pub fn store(config: &Config) -> Result<Arc<store::SqliteStore>> {
    Ok(Arc::new(store::SqliteStore::open(&config.data_dir.join("gatehouse.db"))?))
}

/// The clouds of clouds.yaml behind the catalog cache.
pub fn catalog(config: &Config) -> Result<Arc<Catalog>> {
    Ok(clouds(config)?.0)
}

/// The clouds of clouds.yaml behind the catalog cache, and the lease settings as its clouds'
/// `gatehouse:` keys narrow them (a cloud that would widen one fails start-up, naming it).
fn clouds(config: &Config) -> Result<(Arc<Catalog>, LeaseSettings)> {
    let clouds = pcd::CloudsFile::load(&config.clouds_yaml)
        .map_err(|e| Error::internal(format!("cannot read clouds.yaml at {}", config.clouds_yaml.display()), e))?;
    let mut leases = config.leases.clone();
    for c in clouds.clouds() {
        leases.narrow(&c.name, c.leases.clone()).map_err(|e| Error::internal_msg(e.to_string()))?;
    }
    let cloud = Arc::new(pcd::Pcd::new(clouds, config.pcd_timeout, config.allow_insecure_tls)?);
    Ok((Arc::new(Catalog::new(cloud, config.catalog_ttl)), leases))
}

/// The mailer the configuration names (outbox or SMTP).
pub fn mailer(config: &Config) -> Result<Arc<mail::TemplateMailer>> {
    let transport = mail::TemplateMailer::transport_for(&config.mail_transport)?;
    Ok(Arc::new(mail::TemplateMailer::new(
        &config.mail_from,
        &config.public_base_url,
        config.link_key.clone(),
        transport,
    )?))
}

/// The ServiceNow write-back, when ServiceNow is configured.
pub fn itsm(config: &Config) -> Result<Option<Arc<dyn Itsm>>> {
    let Some(sn) = &config.servicenow else { return Ok(None) };
    Ok(Some(Arc::new(servicenow::RequestItemWriteBack::new(servicenow_client(sn)?))))
}

/// The OpenID provider approvers sign in with, when sign-in is configured.
pub fn identity(config: &Config) -> Result<Option<Arc<dyn IdentityProvider>>> {
    let ApproverProof::SignIn(oidc) = &config.approver_proof else { return Ok(None) };
    let client = oidc::OidcClient::from_settings(oidc, config.pcd_timeout)?;
    Ok(Some(Arc::new(client)))
}

/// ServiceNow's request items, which intake is checked against, when ServiceNow is configured.
pub fn source_items(config: &Config) -> Result<Option<Arc<dyn SourceItems>>> {
    let Some(sn) = &config.servicenow else { return Ok(None) };
    Ok(Some(Arc::new(servicenow::RequestItems::new(servicenow_client(sn)?))))
}

fn servicenow_client(sn: &domain::config::ServiceNowSettings) -> Result<servicenow::Client> {
    let auth = match &sn.auth {
        ServiceNowAuth::Basic { user, password } => {
            servicenow::SnAuth::Basic { user: user.clone(), password: password.expose().to_string() }
        }
        ServiceNowAuth::OAuthClientCredentials { client_id, client_secret } => {
            servicenow::SnAuth::OAuthClientCredentials {
                client_id: client_id.clone(),
                client_secret: client_secret.expose().to_string(),
            }
        }
    };
    servicenow::Client::new(servicenow::ServiceNowConfig::new(sn.instance_url.clone(), auth))
}

/// The change policy file, refused with its line and reason when malformed. No file: every
/// environment is open (the change's approval still gates).
pub fn change_policy(config: &Config) -> Result<ChangePolicy> {
    let Some(path) = &config.change_policy else { return Ok(ChangePolicy::default()) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::internal(format!("cannot read the change policy {}", path.display()), e))?;
    ChangePolicy::parse(&text)
        .map_err(|e| Error::internal(format!("change policy {} is malformed: {e}", path.display()), e))
}

/// The CI change gate, when ServiceNow and GitLab are configured.
pub fn change_gate(config: &Config, records: Arc<dyn ChangeRecords>) -> Result<Option<Arc<ChangeGate>>> {
    let (Some(sn), Some(gl)) = (&config.servicenow, &config.gitlab) else { return Ok(None) };
    let changes = Arc::new(servicenow::ServiceNowChanges::new(servicenow_client(sn)?));
    let code = Arc::new(gitlab::Client::new(gitlab::GitLabConfig::new(gl.url.clone(), gl.token.expose()))?);
    let identity = Arc::new(gitlab::GitLabIdTokens::new(&gl.url, &gl.ci_audience, config.pcd_timeout)?);
    Ok(Some(Arc::new(ChangeGate {
        recheck: config.sweep_interval,
        pipeline_check_after: gl.pipeline_check_after,
        // The one place change histories are sealed, whatever the store.
        records: SealingChanges::wrap(records, config.evidence_key.clone()),
        changes,
        code,
        policy: Arc::new(change_policy(config)?),
        identity,
        allow_static_tokens: gl.ci_allow_static_tokens,
    })))
}

pub fn services(config: &Config, signals: Arc<dyn Signals>) -> Result<Services> {
    services_with(config, store(config)?, signals)
}

/// The services on `store`, which every use-case writes through a `SealingStore`: the one place
/// history entries are sealed onto their request's chain (audit evidence), whatever the store.
/// Pass the bare store: sealed twice, a chain would not verify.
pub fn services_with<S: domain::ports::Store + ChangeRecords + 'static>(
    config: &Config,
    store: Arc<S>,
    signals: Arc<dyn Signals>,
) -> Result<Services> {
    let (catalog, leases) = clouds(config)?;
    Ok(Services {
        changes: SealingChanges::wrap(store.clone(), config.evidence_key.clone()),
        store: SealingStore::wrap(store, config.evidence_key.clone()),
        catalog,
        config: Arc::new(Config { leases, ..config.clone() }),
        signals,
        source_items: source_items(config)?,
        identity: identity(config)?,
    })
}
