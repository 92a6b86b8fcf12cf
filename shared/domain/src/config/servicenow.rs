//! ServiceNow's settings (`GATEHOUSE_SERVICENOW_*`): the instance, how Gatehouse authenticates to
//! it, and which catalog items' request items it takes or lets retire a request.

use super::{ConfigError, Secret, Settings, bad, base_url};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceNowAuth {
    /// The default: OAuth client credentials exist only on recent releases and are off by default.
    Basic {
        user: String,
        password: Secret,
    },
    OAuthClientCredentials {
        client_id: String,
        client_secret: Secret,
    },
}

/// The system of record for request items: intake is checked against it and write-backs go to it.
/// Without it, the intake body is trusted and Gatehouse owes ServiceNow nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowSettings {
    pub instance_url: String,
    pub auth: ServiceNowAuth,
    /// Intake refuses a request item whose `approval` is not `approved`.
    pub require_ritm_approval: bool,
    /// The catalog items (sys_ids, lower-case) whose request items Gatehouse takes; empty: any item
    /// that carries the Gatehouse variable set.
    pub catalog_items: Vec<String>,
    /// The catalog items (sys_ids, lower-case) whose approved request items may retire a request
    /// at once (`POST /v1/requests/{id}/retire`); empty: none may.
    pub decommission_items: Vec<String>,
}

impl ServiceNowSettings {
    pub fn new(instance_url: String, auth: ServiceNowAuth) -> Self {
        ServiceNowSettings {
            instance_url,
            auth,
            require_ritm_approval: true,
            catalog_items: Vec::new(),
            decommission_items: Vec::new(),
        }
    }
}

/// A comma-separated list of catalog item sys_ids, lower-cased.
fn catalog_items<F: Fn(&str) -> Option<String>>(s: &Settings<F>, key: &str) -> Result<Vec<String>, ConfigError> {
    let mut items = Vec::new();
    for item in s.optional(key).unwrap_or_default().split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item.len() != 32 || !item.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(key, format!("{item:?} is not a catalog item sys_id (32 hexadecimal characters)")));
        }
        items.push(item.to_ascii_lowercase());
    }
    Ok(items)
}

pub(super) fn servicenow<F: Fn(&str) -> Option<String>>(
    s: &Settings<F>,
) -> Result<Option<ServiceNowSettings>, ConfigError> {
    let Some(url) = s.optional("GATEHOUSE_SERVICENOW_URL") else { return Ok(None) };
    let instance_url = base_url("GATEHOUSE_SERVICENOW_URL", &url)?;
    let auth = match s.optional("GATEHOUSE_SERVICENOW_CLIENT_ID") {
        Some(client_id) => ServiceNowAuth::OAuthClientCredentials {
            client_id,
            client_secret: Secret::new(s.required("GATEHOUSE_SERVICENOW_CLIENT_SECRET")?),
        },
        None => ServiceNowAuth::Basic {
            user: s.required("GATEHOUSE_SERVICENOW_USER")?,
            password: Secret::new(s.required("GATEHOUSE_SERVICENOW_PASSWORD")?),
        },
    };
    Ok(Some(ServiceNowSettings {
        require_ritm_approval: s.flag("GATEHOUSE_INTAKE_REQUIRE_RITM_APPROVAL", true)?,
        catalog_items: catalog_items(s, "GATEHOUSE_CATALOG_ITEMS")?,
        // sys_ids only, not names: a catalog item's name is neither unique nor fixed, and this
        // list decides who may delete servers.
        decommission_items: catalog_items(s, "GATEHOUSE_DECOMMISSION_ITEMS")?,
        ..ServiceNowSettings::new(instance_url, auth)
    }))
}
