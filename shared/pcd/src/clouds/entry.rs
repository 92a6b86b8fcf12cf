//! One cloud's entry of clouds.yaml read into a [`CloudConfig`]: keys spelled with dashes or
//! underscores, auth keys under `auth` or at the cloud's level, the credentials chosen by
//! `auth_type`, then the region, interface and TLS settings and the `gatehouse:` key.

use std::fmt;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::{
    AppCredentialRef, CloudConfig, CloudsError, Credentials, DomainRef, Interface, ProjectRef, Secret, UserRef,
    gatehouse,
};

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

pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn normalised(map: &Mapping) -> Vec<(String, &Value)> {
    map.iter().filter_map(|(k, v)| scalar(k).map(|k| (k.replace('-', "_"), v))).collect()
}

pub(super) fn parse_cloud(name: &str, entry: &Value) -> Result<CloudConfig, CloudsError> {
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
