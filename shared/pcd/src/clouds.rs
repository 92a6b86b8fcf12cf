//! `clouds.yaml`, read the way openstacksdk reads it.
//!
//! What is understood, per cloud under `clouds.<name>`:
//!
//! - `auth.auth_url` (required);
//! - password auth (`auth_type` absent, `password` or `v3password`): `auth.password`, the user as
//!   `auth.user_id` or `auth.username` with `auth.user_domain_name` | `auth.user_domain_id`, the project
//!   as `auth.project_id` or `auth.project_name` with `auth.project_domain_name` |
//!   `auth.project_domain_id` (`tenant_name` / `tenant_id` are accepted for the project);
//! - `auth_type: v3applicationcredential`: `auth.application_credential_secret` with
//!   `auth.application_credential_id`, or with `auth.application_credential_name` and the user (as
//!   above);
//! - `auth.domain_name` / `auth.domain_id` as the default of both the user's and the project's
//!   domain, as openstacksdk does;
//! - `region_name` (or the first of `regions`), `interface` (`public`, `internal`, `admin`, also as
//!   `publicURL` ...; default public; `endpoint_type` is an alias), `verify` (default true), `cacert`;
//! - `display_name`, a Gatehouse-only key: the name people see (default: the cloud's name);
//! - `gatehouse`, a Gatehouse-only map: the cloud's own lease limits (see `gatehouse.rs`).
//!
//! As in openstacksdk, keys may be spelled with dashes (`user-domain-name`) and auth keys may also
//! sit at the cloud's level instead of under `auth`. Secrets never appear in `Debug` output or in
//! errors.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

mod entry;
mod gatehouse;
#[cfg(test)]
mod tests;
use entry::{normalised, parse_cloud, scalar};

/// A problem with clouds.yaml: names the cloud and the key, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("clouds.yaml: {0}")]
pub struct CloudsError(String);

impl CloudsError {
    fn cloud(cloud: &str, problem: impl fmt::Display) -> Self {
        CloudsError(format!("cloud \"{cloud}\": {problem}"))
    }
}

impl From<CloudsError> for domain::Error {
    fn from(e: CloudsError) -> Self {
        domain::Error::internal_msg(e.to_string())
    }
}

/// A password or a secret: shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A Keystone domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// A Keystone user: by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A Keystone project: by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// An application credential: by id, or by name for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCredentialRef {
    Id(String),
    Name { name: String, user: UserRef },
}

/// How Gatehouse authenticates to the cloud's Keystone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `auth_type: password`: a project-scoped token for a user.
    Password { user: UserRef, password: Secret, project: ProjectRef },
    /// `auth_type: v3applicationcredential`: the credential carries its own project scope.
    ApplicationCredential { credential: AppCredentialRef, secret: Secret },
}

/// Which of the catalog's endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    /// The name Keystone v3 gives the interface in the service catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        let v = value.trim().to_ascii_lowercase();
        let v = v.strip_suffix("url").unwrap_or(&v);
        match v {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cloud of clouds.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// The key under `clouds:`; what API callers name.
    pub name: String,
    /// What people see (the Gatehouse-only `display_name`, else the name).
    pub display_name: String,
    /// `auth.auth_url` as written (without a trailing slash).
    pub auth_url: String,
    pub credentials: Credentials,
    pub region_name: Option<String>,
    pub interface: Interface,
    /// Whether to verify the cloud's TLS certificates.
    pub verify: bool,
    /// A PEM bundle of the CAs to trust instead of the system's.
    pub cacert: Option<PathBuf>,
    /// The cloud's own lease limits (the Gatehouse-only `gatehouse:` key); none by default.
    pub leases: domain::config::CloudLeaseLimits,
}

/// The clouds of one clouds.yaml, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudsFile {
    clouds: Vec<CloudConfig>,
}

impl CloudsFile {
    /// Reads a clouds.yaml file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CloudsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CloudsError(format!("could not read {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses the text of a clouds.yaml file.
    pub fn parse(yaml: &str) -> Result<Self, CloudsError> {
        let mut doc: Value = serde_yaml::from_str(yaml).map_err(|e| CloudsError(format!("not valid YAML: {e}")))?;
        doc.apply_merge().map_err(|e| CloudsError(format!("not valid YAML: {e}")))?;
        let Value::Mapping(top) = doc else {
            return Err(CloudsError("expected a map with a \"clouds\" key".into()));
        };
        let Some(clouds) = top.get("clouds") else {
            return Err(CloudsError("the \"clouds\" key is missing".into()));
        };
        let Value::Mapping(clouds) = clouds else {
            return Err(CloudsError("\"clouds\" is not a map".into()));
        };
        if clouds.is_empty() {
            return Err(CloudsError("\"clouds\" is empty".into()));
        }
        let mut out = Vec::with_capacity(clouds.len());
        for (name, entry) in clouds {
            let Some(name) = scalar(name) else {
                return Err(CloudsError("a cloud's name is not a string".into()));
            };
            out.push(parse_cloud(&name, entry)?);
        }
        Ok(CloudsFile { clouds: out })
    }

    /// Builds the file from clouds assembled in code (the demo, tests).
    pub fn from_clouds(clouds: Vec<CloudConfig>) -> Self {
        CloudsFile { clouds }
    }

    pub fn clouds(&self) -> &[CloudConfig] {
        &self.clouds
    }

    pub fn get(&self, name: &str) -> Option<&CloudConfig> {
        self.clouds.iter().find(|c| c.name == name)
    }

    pub fn into_clouds(self) -> Vec<CloudConfig> {
        self.clouds
    }
}
