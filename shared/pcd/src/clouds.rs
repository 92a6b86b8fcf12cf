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

use serde_yaml::{Mapping, Value};

mod gatehouse;

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

/// A cloud's keys with dashes turned into underscores, `auth` split off.
struct Entry<'a> {
    name: &'a str,
    cloud: Vec<(String, &'a Value)>,
    auth: Vec<(String, &'a Value)>,
}

impl Entry<'_> {
    fn err(&self, problem: impl fmt::Display) -> CloudsError {
        CloudsError::cloud(self.name, problem)
    }

    fn find<'v>(map: &[(String, &'v Value)], key: &str) -> Option<&'v Value> {
        map.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A cloud-level setting as text; empty counts as absent.
    fn setting(&self, key: &str) -> Result<Option<String>, CloudsError> {
        match Self::find(&self.cloud, key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match scalar(v) {
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) => Ok(Some(s)),
                None => Err(self.err(format_args!("{key} is not a string"))),
            },
        }
    }

    /// An auth setting: under `auth` first, then at the cloud's level, trying each spelling.
    fn auth(&self, keys: &[&str]) -> Result<Option<String>, CloudsError> {
        for key in keys {
            for map in [&self.auth, &self.cloud] {
                match Self::find(map, key) {
                    None | Some(Value::Null) => {}
                    Some(v) => match scalar(v) {
                        Some(s) if s.is_empty() => {}
                        Some(s) => return Ok(Some(s)),
                        None => return Err(self.err(format_args!("auth.{key} is not a string"))),
                    },
                }
            }
        }
        Ok(None)
    }

    fn required_auth(&self, key: &str) -> Result<String, CloudsError> {
        self.auth(&[key])?.ok_or_else(|| self.err(format_args!("auth.{key} is missing")))
    }

    /// A domain by id or name (`user`/`project`), falling back to `domain_id` / `domain_name`.
    fn domain(&self, of: &str) -> Result<Option<DomainRef>, CloudsError> {
        if let Some(id) = self.auth(&[&format!("{of}_domain_id")])? {
            return Ok(Some(DomainRef::Id(id)));
        }
        if let Some(name) = self.auth(&[&format!("{of}_domain_name")])? {
            return Ok(Some(DomainRef::Name(name)));
        }
        if let Some(id) = self.auth(&["domain_id"])? {
            return Ok(Some(DomainRef::Id(id)));
        }
        Ok(self.auth(&["domain_name"])?.map(DomainRef::Name))
    }

    fn user(&self, required: bool) -> Result<Option<UserRef>, CloudsError> {
        if let Some(id) = self.auth(&["user_id"])? {
            return Ok(Some(UserRef::Id(id)));
        }
        let Some(name) = self.auth(&["username", "user_name"])? else {
            return if required { Err(self.err("auth.username (or auth.user_id) is missing")) } else { Ok(None) };
        };
        let domain = self
            .domain("user")?
            .ok_or_else(|| self.err("auth.user_domain_name (or auth.user_domain_id) is missing"))?;
        Ok(Some(UserRef::Name { name, domain }))
    }

    fn project(&self) -> Result<ProjectRef, CloudsError> {
        if let Some(id) = self.auth(&["project_id", "tenant_id"])? {
            return Ok(ProjectRef::Id(id));
        }
        let Some(name) = self.auth(&["project_name", "tenant_name"])? else {
            return Err(self.err("auth.project_name (or auth.project_id) is missing"));
        };
        let domain = self
            .domain("project")?
            .ok_or_else(|| self.err("auth.project_domain_name (or auth.project_domain_id) is missing"))?;
        Ok(ProjectRef::Name { name, domain })
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn normalised(map: &Mapping) -> Vec<(String, &Value)> {
    map.iter().filter_map(|(k, v)| scalar(k).map(|k| (k.replace('-', "_"), v))).collect()
}

fn parse_cloud(name: &str, entry: &Value) -> Result<CloudConfig, CloudsError> {
    let Value::Mapping(map) = entry else {
        return Err(CloudsError::cloud(name, "is not a map"));
    };
    let cloud = normalised(map);
    let auth = match Entry::find(&cloud, "auth") {
        Some(Value::Mapping(auth)) => normalised(auth),
        Some(Value::Null) | None => return Err(CloudsError::cloud(name, "auth is missing")),
        Some(_) => return Err(CloudsError::cloud(name, "auth is not a map")),
    };
    let e = Entry { name, cloud, auth };

    let auth_url = e.required_auth("auth_url")?.trim().trim_end_matches('/').to_string();
    match url::Url::parse(&auth_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => return Err(e.err("auth.auth_url is not an http(s) URL")),
    }

    let auth_type = match e.setting("auth_type")? {
        Some(t) => Some(t),
        None => e.auth(&["auth_type"])?,
    };
    let auth_type = auth_type.map(|t| t.trim().to_ascii_lowercase().replace('-', "_"));
    let app_credential = match auth_type.as_deref() {
        None => e.auth(&["password"])?.is_none() && e.auth(&["application_credential_secret"])?.is_some(),
        Some("password" | "v3password") => false,
        Some("v3applicationcredential" | "applicationcredential" | "application_credential") => true,
        Some(_) => return Err(e.err("auth_type is not supported (use password or v3applicationcredential)")),
    };

    let credentials = if app_credential {
        let secret = Secret(e.required_auth("application_credential_secret")?);
        let credential = if let Some(id) = e.auth(&["application_credential_id"])? {
            AppCredentialRef::Id(id)
        } else if let Some(name) = e.auth(&["application_credential_name"])? {
            let user = e.user(true)?.expect("required user");
            AppCredentialRef::Name { name, user }
        } else {
            return Err(e.err("auth.application_credential_id (or auth.application_credential_name) is missing"));
        };
        Credentials::ApplicationCredential { credential, secret }
    } else {
        let user = e.user(true)?.expect("required user");
        let password = Secret(e.required_auth("password")?);
        let project = e.project()?;
        Credentials::Password { user, password, project }
    };

    let region_name = match e.setting("region_name")? {
        Some(r) => Some(r),
        None => first_region(&e)?,
    };
    let interface = match e.setting("interface")?.or(e.setting("endpoint_type")?) {
        None => Interface::Public,
        Some(v) => Interface::parse(&v)
            .ok_or_else(|| e.err("interface must be public, internal or admin (or publicURL, ...)"))?,
    };
    let verify = match Entry::find(&e.cloud, "verify") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => true,
            "false" | "no" | "off" | "0" => false,
            _ => return Err(e.err("verify must be true or false")),
        },
        Some(_) => return Err(e.err("verify must be true or false")),
    };
    let cacert = e.setting("cacert")?.map(|p| expand_home(p.trim()));
    let display_name = e.setting("display_name")?.map(|d| d.trim().to_string()).unwrap_or_else(|| name.to_string());
    let leases = gatehouse::lease_limits(name, Entry::find(&e.cloud, "gatehouse"))?;

    Ok(CloudConfig {
        name: name.to_string(),
        display_name,
        auth_url,
        credentials,
        region_name,
        interface,
        verify,
        cacert,
        leases,
    })
}

/// openstacksdk's `regions:` list: names or maps with a `name`; the first is the default.
fn first_region(e: &Entry<'_>) -> Result<Option<String>, CloudsError> {
    match Entry::find(&e.cloud, "regions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(regions)) => match regions.first() {
            None => Ok(None),
            Some(Value::Mapping(m)) => match m.get("name").and_then(scalar) {
                Some(n) if !n.is_empty() => Ok(Some(n)),
                _ => Err(e.err("regions[0].name is missing")),
            },
            Some(v) => scalar(v).filter(|s| !s.is_empty()).map(Some).ok_or_else(|| e.err("regions[0] is not a string")),
        },
        Some(_) => Err(e.err("regions is not a list")),
    }
}

fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> CloudConfig {
        CloudsFile::parse(yaml).unwrap().into_clouds().remove(0)
    }

    fn err(yaml: &str) -> String {
        CloudsFile::parse(yaml).unwrap_err().to_string()
    }

    #[test]
    fn password_auth_by_names() {
        let c = one(r#"
clouds:
  pcd-east:
    auth:
      auth_url: https://pcd.example.com/keystone/v3/
      username: svc-gatehouse
      password: hunter2
      user_domain_name: Default
      project_name: provisioning
      project_domain_name: Default
    region_name: east
    interface: publicURL
"#);
        assert_eq!(c.name, "pcd-east");
        assert_eq!(c.display_name, "pcd-east");
        assert_eq!(c.auth_url, "https://pcd.example.com/keystone/v3");
        assert_eq!(c.region_name.as_deref(), Some("east"));
        assert_eq!(c.interface, Interface::Public);
        assert!(c.verify);
        assert_eq!(
            c.credentials,
            Credentials::Password {
                user: UserRef::Name { name: "svc-gatehouse".into(), domain: DomainRef::Name("Default".into()) },
                password: Secret::new("hunter2"),
                project: ProjectRef::Name { name: "provisioning".into(), domain: DomainRef::Name("Default".into()) },
            }
        );
    }

    #[test]
    fn password_auth_by_ids_and_the_domain_fallback() {
        let c = one(r#"
clouds:
  a:
    display_name: "East (prod)"
    auth:
      auth_url: https://pcd.example.com/keystone
      user_id: u-1
      password: p
      project_id: 1234
    verify: false
    cacert: /etc/ssl/pcd.pem
    interface: internal
  b:
    auth:
      auth-url: https://pcd.example.com/keystone
      username: u
      password: p
      tenant_name: t
    domain_id: default
"#);
        assert_eq!(c.display_name, "East (prod)");
        assert!(!c.verify);
        assert_eq!(c.cacert.as_deref(), Some(Path::new("/etc/ssl/pcd.pem")));
        assert_eq!(c.interface, Interface::Internal);
        assert!(matches!(
            c.credentials,
            Credentials::Password { user: UserRef::Id(ref u), project: ProjectRef::Id(ref p), .. } if u == "u-1" && p == "1234"
        ));
        let b = CloudsFile::parse(
            r#"
clouds:
  b:
    auth:
      auth-url: https://pcd.example.com/keystone
      username: u
      password: p
      tenant_name: t
    domain_id: default
"#,
        )
        .unwrap();
        let b = b.get("b").unwrap();
        assert_eq!(
            b.credentials,
            Credentials::Password {
                user: UserRef::Name { name: "u".into(), domain: DomainRef::Id("default".into()) },
                password: Secret::new("p"),
                project: ProjectRef::Name { name: "t".into(), domain: DomainRef::Id("default".into()) },
            }
        );
    }

    #[test]
    fn application_credentials_by_id_and_by_name() {
        let c = one(r#"
clouds:
  x:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_id: ac-1
      application_credential_secret: s3cr3t
    regions: [west, east]
"#);
        assert_eq!(
            c.credentials,
            Credentials::ApplicationCredential {
                credential: AppCredentialRef::Id("ac-1".into()),
                secret: Secret::new("s3cr3t")
            }
        );
        assert_eq!(c.region_name.as_deref(), Some("west"));
        let c = one(r#"
clouds:
  x:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_name: gatehouse
      application_credential_secret: s3cr3t
      username: svc
      user_domain_id: default
"#);
        assert_eq!(
            c.credentials,
            Credentials::ApplicationCredential {
                credential: AppCredentialRef::Name {
                    name: "gatehouse".into(),
                    user: UserRef::Name { name: "svc".into(), domain: DomainRef::Id("default".into()) }
                },
                secret: Secret::new("s3cr3t")
            }
        );
    }

    #[test]
    fn errors_name_the_cloud_and_the_key() {
        let base = |auth: &str| format!("clouds:\n  pcd-east:\n    auth:\n{auth}");
        assert_eq!(
            err(&base("      username: u\n      password: p\n")),
            "clouds.yaml: cloud \"pcd-east\": auth.auth_url is missing"
        );
        assert_eq!(
            err(&base(
                "      auth_url: https://k/v3\n      username: u\n      user_domain_name: D\n      project_id: p\n"
            )),
            "clouds.yaml: cloud \"pcd-east\": auth.password is missing"
        );
        assert_eq!(
            err(&base("      auth_url: https://k/v3\n      username: u\n      password: p\n      project_id: p\n")),
            "clouds.yaml: cloud \"pcd-east\": auth.user_domain_name (or auth.user_domain_id) is missing"
        );
        assert_eq!(
            err(&base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n")),
            "clouds.yaml: cloud \"pcd-east\": auth.project_name (or auth.project_id) is missing"
        );
        assert_eq!(
            err(&base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n      project_name: x\n")),
            "clouds.yaml: cloud \"pcd-east\": auth.project_domain_name (or auth.project_domain_id) is missing"
        );
        assert_eq!(
            err(&base("      auth_url: not a url\n")),
            "clouds.yaml: cloud \"pcd-east\": auth.auth_url is not an http(s) URL"
        );
        assert_eq!(err("clouds:\n  c: {}\n"), "clouds.yaml: cloud \"c\": auth is missing");
        assert_eq!(err("clouds:\n  c: 3\n"), "clouds.yaml: cloud \"c\": is not a map");
        assert_eq!(err("other: 1\n"), "clouds.yaml: the \"clouds\" key is missing");
        assert_eq!(err("clouds: {}\n"), "clouds.yaml: \"clouds\" is empty");
        assert!(err("clouds: [\n").starts_with("clouds.yaml: not valid YAML"));
        assert_eq!(
            err(
                "clouds:\n  c:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: https://k\n      application_credential_id: i\n"
            ),
            "clouds.yaml: cloud \"c\": auth.application_credential_secret is missing"
        );
        assert_eq!(
            err("clouds:\n  c:\n    auth_type: token\n    auth:\n      auth_url: https://k\n"),
            "clouds.yaml: cloud \"c\": auth_type is not supported (use password or v3applicationcredential)"
        );
        assert_eq!(
            err(&format!(
                "{}    interface: sideways\n",
                base("      auth_url: https://k/v3\n      user_id: u\n      password: p\n      project_id: x\n")
            )),
            "clouds.yaml: cloud \"pcd-east\": interface must be public, internal or admin (or publicURL, ...)"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let yaml = r#"
clouds:
  c:
    auth:
      auth_url: https://k/v3
      user_id: u
      password: hunter2-very-secret
      project_id: p
    verify: maybe-hunter2-very-secret
"#;
        let e = err(yaml);
        assert!(!e.contains("hunter2"), "{e}");
        let c = one(&yaml.replace("    verify: maybe-hunter2-very-secret\n", ""));
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"));
    }

    #[test]
    fn interfaces_in_all_spellings() {
        for (s, i) in [
            ("public", Interface::Public),
            ("publicURL", Interface::Public),
            ("internalURL", Interface::Internal),
            ("admin", Interface::Admin),
        ] {
            assert_eq!(Interface::parse(s), Some(i), "{s}");
        }
        assert_eq!(Interface::parse("private"), None);
    }
}
