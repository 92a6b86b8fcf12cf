//! What every Lambda's main.rs builds once per cold start: the configuration (the environment plus,
//! when `GATEHOUSE_SECRET_ARN` is set, the JSON secret of Secrets Manager, so credentials never sit
//! in plain environment variables), the DynamoDB-backed services and the SES mailer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use domain::config::{Config, Settings};
use domain::ports::Mailer;
use domain::usecases::{NoSignals, Services};
use domain::{Error, Result};
use store_dynamodb::DynamoStore;

/// Files that settings carry as text (secrets and the policy) are written here for the loaders
/// that read paths. Lambda's only writable place is /tmp.
const FILES_DIR: &str = "/tmp/gatehouse";

/// Settings whose value is a file's content; each becomes a file and the path setting points to it.
const CONTENT_SETTINGS: [(&str, &str, &str); 3] = [
    ("GATEHOUSE_CLOUDS_YAML_CONTENT", "GATEHOUSE_CLOUDS_YAML", "clouds.yaml"),
    ("GATEHOUSE_CHANGE_POLICY_CONTENT", "GATEHOUSE_CHANGE_POLICY", "change-policy.yaml"),
    ("GATEHOUSE_APPROVAL_POLICY_CONTENT", "GATEHOUSE_APPROVAL_POLICY", "approval-policy.yaml"),
];

async fn secret_values(arn: &str) -> Result<BTreeMap<String, String>> {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        Error::upstream_caused("AWS Secrets Manager", "GetSecretValue failed for GATEHOUSE_SECRET_ARN", e)
    })?;
    let text = out.secret_string().ok_or_else(|| Error::internal_msg("the Gatehouse secret has no SecretString"))?;
    serde_json::from_str(text)
        .map_err(|e| Error::internal("the Gatehouse secret must be a JSON object of setting names to strings", e))
}

fn write_private(name: &str, content: &str) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(FILES_DIR).map_err(|e| Error::internal(format!("cannot create {FILES_DIR}"), e))?;
    let path = PathBuf::from(FILES_DIR).join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::internal(format!("cannot write {}", path.display()), e))?;
    file.write_all(content.as_bytes()).map_err(|e| Error::internal(format!("cannot write {}", path.display()), e))?;
    Ok(path)
}

/// The configuration: environment variables, overridden by the secret's entries.
pub async fn config() -> Result<Config> {
    let mut values: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("GATEHOUSE_")).collect();
    if let Some(arn) = values.get("GATEHOUSE_SECRET_ARN").cloned() {
        values.extend(secret_values(&arn).await?);
    }
    for (content, path_setting, file) in CONTENT_SETTINGS {
        if let Some(text) = values.remove(content) {
            let path = write_private(file, &text)?;
            values.insert(path_setting.to_string(), path.display().to_string());
        }
    }
    Config::load(&Settings::new(move |k| values.get(k).cloned()))
        .map_err(|e| Error::internal(format!("configuration refused: {e}"), e))
}

pub async fn store(config: &Config) -> Result<Arc<DynamoStore>> {
    let table =
        config.table.clone().ok_or_else(|| Error::internal_msg("configuration setting GATEHOUSE_TABLE: is not set"))?;
    Ok(Arc::new(DynamoStore::from_env(table).await))
}

/// The services on DynamoDB. Nothing to wake: the table's stream starts provisioning and delivery.
pub async fn services(config: &Config) -> Result<Services> {
    runtime::services_with(config, store(config).await?, Arc::new(NoSignals))
}

/// The mailer the configuration names: SES on AWS, SMTP or the outbox elsewhere.
pub async fn mailer(config: &Config) -> Result<Arc<dyn Mailer>> {
    let transport = mail_ses::transport_for(&config.mail_transport).await?;
    Ok(Arc::new(mail::TemplateMailer::new(
        &config.mail_from,
        &config.public_base_url,
        config.link_key.clone(),
        transport,
    )?))
}
