//! The one configuration loader. Every function and `gatehouse serve` read the same settings from
//! the environment (on Lambda, secrets are fetched into it at cold start); a missing or bad setting
//! fails start-up with a message naming it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::mail::check_email;
use crate::token::LinkKey;

mod approval_policy;
mod auditors;
mod keys;
mod lease;
mod servicenow;
mod smtp;
pub use approval_policy::approval_policy;
pub use auditors::auditors;
pub use keys::evidence_key;
use keys::link_key;
pub(crate) use lease::duration;
pub use lease::{CloudLeaseLimits, LeaseSettings};
use servicenow::servicenow;
pub use servicenow::{ServiceNowAuth, ServiceNowSettings};
pub use smtp::{SmtpCredentials, SmtpSettings, SmtpTls};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration setting {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

fn bad(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_string(), problem: problem.into() }
}

pub use crate::credentials::{ApiTokens, Grant, Scope};

/// A credential read from configuration: shown as `***` in every Debug output and log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The OpenID provider approvers sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// How an approver proves who they are when deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproverProof {
    /// An OpenID Connect sign-in whose verified e-mail is the link's approver.
    SignIn(OidcSettings),
    /// The link alone (`GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL=true`): whoever holds it can decide, and
    /// every page, history entry and mail says so.
    LinkOnly,
}

/// GitLab, for the change gate's MR notes and job plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabSettings {
    pub url: String,
    pub token: Secret,
    /// The `aud` CI jobs' ID tokens must carry (`GATEHOUSE_CI_AUDIENCE`, default `gatehouse`).
    pub ci_audience: String,
    /// Whether a static token of scope `ci` may call the gate instead of an ID token
    /// (`GATEHOUSE_CI_ALLOW_STATIC_TOKENS`): it proves nothing about the job.
    pub ci_allow_static_tokens: bool,
    /// What GitLab's webhooks carry in `X-Gitlab-Token` (`GATEHOUSE_GITLAB_WEBHOOK_SECRET`);
    /// without it, GitLab's events are refused.
    pub webhook_secret: Option<Secret>,
    /// How old an open change's pipeline must be before the sweeper reads it
    /// (`GATEHOUSE_PIPELINE_CHECK_AFTER_SECS`, default an hour).
    pub pipeline_check_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// `.eml` files in a folder (demo, tests, or a site whose mail relay picks them up).
    Outbox { dir: PathBuf },
    /// An SMTP relay: over verified TLS (STARTTLS or implicit) except to a loopback relay.
    Smtp(SmtpSettings),
    /// Amazon SES v2, with an optional configuration set.
    Ses { configuration_set: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvers {
    pub default: Vec<String>,
    pub by_cloud: BTreeMap<String, Vec<String>>,
}

impl Approvers {
    pub fn for_cloud(&self, cloud: &str) -> &[String] {
        self.by_cloud.get(cloud).unwrap_or(&self.default)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub api_tokens: ApiTokens,
    /// Where people reach Gatehouse; approval links are built from it. No trailing slash.
    pub public_base_url: String,
    pub clouds_yaml: PathBuf,
    pub data_dir: PathBuf,
    pub catalog_ttl: Duration,
    pub pcd_timeout: Duration,
    pub approval_ttl: Duration,
    pub max_count: u32,
    pub approvers: Approvers,
    pub mail_from: String,
    pub mail_transport: MailTransport,
    /// How long one provisioning run waits for ACTIVE before leaving it to the sweeper.
    pub provision_wait: Duration,
    /// How long provisioning may take in all before it fails.
    pub provision_deadline: Duration,
    /// How long a provisioning claim holds before another worker may take over.
    pub lease: Duration,
    pub boot_volume_gb: u64,
    pub sweep_interval: Duration,
    /// How many times an owed message is tried before it is dead (`GATEHOUSE_MESSAGE_MAX_ATTEMPTS`,
    /// default 20): kept, shown on its request, and revived only by hand.
    pub message_max_attempts: u32,
    pub servicenow: Option<ServiceNowSettings>,
    pub gitlab: Option<GitLabSettings>,
    /// The change policy file (windows, blackouts, freezes per environment).
    pub change_policy: Option<PathBuf>,
    /// Shared secret of ServiceNow's signed callbacks (`X-Gatehouse-Signature`).
    pub webhook_secret: Option<Secret>,
    /// The DynamoDB table (on AWS).
    pub table: Option<String>,
    /// What approval links are derived with; never stored with the data.
    pub link_key: LinkKey,
    /// What history chains are sealed with (audit evidence); never stored with the data.
    pub evidence_key: crate::evidence::EvidenceKey,
    pub approver_proof: ApproverProof,
    /// Whether a cloud's `verify: false` may switch TLS verification off
    /// (`GATEHOUSE_ALLOW_INSECURE_TLS`); without it such a cloud is refused at start-up.
    pub allow_insecure_tls: bool,
    /// Leases on servers: their length, reminders and extensions.
    pub leases: LeaseSettings,
    /// Who approves what (`GATEHOUSE_APPROVAL_POLICY`); without it one stage of the cloud's
    /// approvers, quorum 1.
    pub approval_policy: Option<std::sync::Arc<crate::approvals::ApprovalPolicy>>,
    /// Who may sign in to the audit page (`GATEHOUSE_AUDITORS`, e-mail addresses); empty: nobody
    /// signs in there, auditors use a token of scope `audit`.
    pub auditors: Vec<String>,
}

/// Reads settings through a lookup function, so tests need not touch the process environment.
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl Settings<fn(&str) -> Option<String>> {
    pub fn from_env() -> Self {
        fn get(k: &str) -> Option<String> {
            std::env::var(k).ok()
        }
        Settings { lookup: get }
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    pub fn optional(&self, key: &str) -> Option<String> {
        (self.lookup)(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, key: &str) -> Result<String, ConfigError> {
        self.optional(key).ok_or_else(|| bad(key, "is not set"))
    }

    /// A duration in seconds, above 0 and at most a year: larger values would overflow the
    /// timestamps they are added to, so they are a start-up error, never a panic later.
    pub fn seconds(&self, key: &str, default: u64) -> Result<Duration, ConfigError> {
        const MAX_SECS: f64 = 366.0 * 24.0 * 3600.0;
        match self.optional(key) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && s <= MAX_SECS => Ok(Duration::from_secs_f64(s)),
                _ => Err(bad(key, format!("must be a number of seconds above 0 and at most {MAX_SECS}, got {v:?}"))),
            },
        }
    }

    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(key).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(bad(key, format!("must be true or false, got {other:?}"))),
        }
    }

    pub fn number(&self, key: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
        match self.optional(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(bad(
                    key,
                    format!("must be a whole number from {} to {}, got {v:?}", range.start(), range.end()),
                )),
            },
        }
    }
}

/// The most approvers a request can have (all its stages together). Intake writes the request in
/// one atomic write: five records of its own (source key, request, first history entry, the
/// requester's mail, the ServiceNow work note) and a token and a mail per approver, which must
/// stay within `ports::MAX_WRITE_ITEMS` (DynamoDB's 100 items per transaction).
pub const MAX_APPROVERS: usize = (crate::ports::MAX_WRITE_ITEMS - 5) / 2;

/// `GATEHOUSE_MESSAGE_MAX_ATTEMPTS`: 1 to 1000, default 20.
pub fn message_max_attempts<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<u32, ConfigError> {
    Ok(s.number("GATEHOUSE_MESSAGE_MAX_ATTEMPTS", 20, 1..=1000)? as u32)
}

/// A list of approvers: e-mail addresses, at most `MAX_APPROVERS`.
fn approver_list(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let list = email_list(key, value)?;
    if list.len() > MAX_APPROVERS {
        return Err(bad(
            key,
            format!(
                "names {} approvers; a request can have at most {MAX_APPROVERS}, so that the request, its \
                 approval links and their mails fit one write of at most {} items (DynamoDB's limit per transaction)",
                list.len(),
                crate::ports::MAX_WRITE_ITEMS
            ),
        ));
    }
    Ok(list)
}

fn email_list(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let list: Vec<String> = value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        return Err(bad(key, "must name at least one e-mail address"));
    }
    for addr in &list {
        check_email(key, addr).map_err(|_| bad(key, format!("{addr:?} is not a single e-mail address")))?;
    }
    Ok(list)
}

fn base_url(key: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim_end_matches('/');
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !v.contains(['?', '#', ' ']) => Ok(v.to_string()),
        _ => Err(bad(key, format!("must be an http(s) URL like https://gatehouse.example.com, got {value:?}"))),
    }
}

/// Sign-in is required: without an issuer, start-up needs the explicit link-only opt-in.
fn approver_proof<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<ApproverProof, ConfigError> {
    const ISSUER: &str = "GATEHOUSE_OIDC_ISSUER";
    const LINK_ONLY: &str = "GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL";
    match s.optional(ISSUER) {
        Some(issuer) => Ok(ApproverProof::SignIn(OidcSettings {
            // Kept exactly as given: the ID token's `iss` must equal it character for character
            // (some providers' issuers end in '/'). The OIDC client checks the scheme.
            issuer,
            client_id: s.required("GATEHOUSE_OIDC_CLIENT_ID")?,
            client_secret: Secret::new(s.required("GATEHOUSE_OIDC_CLIENT_SECRET")?),
        })),
        None if s.flag(LINK_ONLY, false)? => Ok(ApproverProof::LinkOnly),
        None => Err(bad(
            ISSUER,
            format!(
                "is not set: approvers must sign in (set {ISSUER}, GATEHOUSE_OIDC_CLIENT_ID and \
                 GATEHOUSE_OIDC_CLIENT_SECRET), or set {LINK_ONLY}=true to let anyone holding a link decide"
            ),
        )),
    }
}

impl Config {
    pub fn load<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Config, ConfigError> {
        let api_tokens = ApiTokens::parse(&s.required("GATEHOUSE_API_TOKENS")?)
            .map_err(|problem| bad("GATEHOUSE_API_TOKENS", problem))?;
        let data_dir = PathBuf::from(s.optional("GATEHOUSE_DATA_DIR").unwrap_or_else(|| ".gatehouse".into()));
        let mut by_cloud = BTreeMap::new();
        if let Some(spec) = s.optional("GATEHOUSE_APPROVERS_BY_CLOUD") {
            const KEY: &str = "GATEHOUSE_APPROVERS_BY_CLOUD";
            for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (cloud, list) =
                    part.split_once('=').ok_or_else(|| bad(KEY, format!("{part:?} is not cloud=address,address")))?;
                by_cloud.insert(cloud.trim().to_string(), approver_list(KEY, list)?);
            }
        }
        let mail_from = s.required("GATEHOUSE_MAIL_FROM")?;
        check_email("GATEHOUSE_MAIL_FROM", &mail_from)
            .map_err(|_| bad("GATEHOUSE_MAIL_FROM", "must be a single e-mail address"))?;
        let mail_transport = match s.optional("GATEHOUSE_MAIL_TRANSPORT").as_deref().unwrap_or("outbox") {
            "outbox" => MailTransport::Outbox {
                dir: s.optional("GATEHOUSE_OUTBOX_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("outbox")),
            },
            "smtp" => MailTransport::Smtp(SmtpSettings::load(s)?),
            "ses" => MailTransport::Ses { configuration_set: s.optional("GATEHOUSE_SES_CONFIGURATION_SET") },
            other => {
                return Err(bad("GATEHOUSE_MAIL_TRANSPORT", format!("must be outbox, smtp or ses, got {other:?}")));
            }
        };
        let link_key = link_key(s, &data_dir)?;
        let evidence_key = evidence_key(s, &data_dir)?;
        let approver_proof = approver_proof(s)?;
        Ok(Config {
            api_tokens,
            public_base_url: base_url("GATEHOUSE_PUBLIC_BASE_URL", &s.required("GATEHOUSE_PUBLIC_BASE_URL")?)?,
            clouds_yaml: PathBuf::from(s.required("GATEHOUSE_CLOUDS_YAML")?),
            data_dir,
            catalog_ttl: s.seconds("GATEHOUSE_CATALOG_TTL_SECS", 300)?,
            pcd_timeout: s.seconds("GATEHOUSE_PCD_TIMEOUT_SECS", 10)?,
            approval_ttl: s.seconds("GATEHOUSE_APPROVAL_TTL_SECS", 48 * 3600)?,
            max_count: s.number("GATEHOUSE_MAX_COUNT", 10, 1..=100)? as u32,
            approvers: Approvers {
                default: approver_list("GATEHOUSE_APPROVERS", &s.required("GATEHOUSE_APPROVERS")?)?,
                by_cloud,
            },
            mail_from,
            mail_transport,
            provision_wait: s.seconds("GATEHOUSE_PROVISION_WAIT_SECS", 60)?,
            provision_deadline: s.seconds("GATEHOUSE_PROVISION_DEADLINE_SECS", 15 * 60)?,
            lease: s.seconds("GATEHOUSE_LEASE_SECS", 120)?,
            boot_volume_gb: s.number("GATEHOUSE_BOOT_VOLUME_GB", 20, 1..=16384)?,
            sweep_interval: s.seconds("GATEHOUSE_SWEEP_INTERVAL_SECS", 60)?,
            message_max_attempts: message_max_attempts(s)?,
            servicenow: servicenow(s)?,
            gitlab: match s.optional("GATEHOUSE_GITLAB_URL") {
                Some(url) => Some(GitLabSettings {
                    url: base_url("GATEHOUSE_GITLAB_URL", &url)?,
                    token: Secret::new(s.required("GATEHOUSE_GITLAB_TOKEN")?),
                    ci_audience: s.optional("GATEHOUSE_CI_AUDIENCE").unwrap_or_else(|| "gatehouse".into()),
                    ci_allow_static_tokens: s.flag("GATEHOUSE_CI_ALLOW_STATIC_TOKENS", false)?,
                    webhook_secret: match s.optional("GATEHOUSE_GITLAB_WEBHOOK_SECRET") {
                        Some(secret) if secret.len() < 32 => {
                            return Err(bad("GATEHOUSE_GITLAB_WEBHOOK_SECRET", "needs at least 32 characters"));
                        }
                        other => other.map(Secret::new),
                    },
                    pipeline_check_after: s.seconds("GATEHOUSE_PIPELINE_CHECK_AFTER_SECS", 3600)?,
                }),
                None => None,
            },
            change_policy: s.optional("GATEHOUSE_CHANGE_POLICY").map(PathBuf::from),
            table: s.optional("GATEHOUSE_TABLE"),
            allow_insecure_tls: s.flag("GATEHOUSE_ALLOW_INSECURE_TLS", false)?,
            leases: LeaseSettings::load(s)?,
            approval_policy: approval_policy(s)?,
            auditors: auditors(s)?,
            link_key,
            evidence_key,
            approver_proof,
            webhook_secret: match s.optional("GATEHOUSE_WEBHOOK_SECRET") {
                Some(secret) if secret.len() < 32 => {
                    return Err(bad("GATEHOUSE_WEBHOOK_SECRET", "needs at least 32 characters"));
                }
                other => other.map(Secret::new),
            },
        })
    }
}

#[cfg(test)]
mod tests;
