//! The service catalog the simulator seeds, and request items ordered from it: the demo's
//! "Virtual machine (Gatehouse)" item carries the Gatehouse variable set
//! (`infra/servicenow/manifest.json`), the "Standard laptop" item does not.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use crate::SYSTEM_USER;
use crate::db::{Actor, Db};

/// sys_id of the seeded catalog item "Virtual machine (Gatehouse)" (uses the Gatehouse variable set).
pub const VM_CATALOG_ITEM: &str = "4f1c7d2e9a6b4e0c8d3a5b7c9e1f2a30";
/// sys_id of the seeded catalog item "Standard laptop" (no Gatehouse variables).
pub const LAPTOP_CATALOG_ITEM: &str = "8b2d6e4f1a3c4b5d9e7f0a1b2c3d4e51";
/// sys_id of the seeded catalog item "Decommission virtual machine (Gatehouse)" (no Gatehouse
/// variables): its approved items may retire a request at once (`GATEHOUSE_DECOMMISSION_ITEMS`).
pub const DECOMMISSION_CATALOG_ITEM: &str = "d1c0a7b9e2f34a5b8c6d7e8f9a0b1c2d";
/// sys_id of the seeded variable set "Gatehouse VM" (`item_option_new_set`).
pub const GATEHOUSE_VARIABLE_SET: &str = "c3e5a7b9d1f24680a2c4e6b8d0f13572";

pub(crate) const VM_ITEM_NAME: &str = "Virtual machine (Gatehouse)";
const LAPTOP_ITEM_NAME: &str = "Standard laptop";
const DECOMMISSION_ITEM_NAME: &str = "Decommission virtual machine (Gatehouse)";

/// The Gatehouse variable set's variables: (short name in [`ItemVariables`], variable name,
/// question, type, default value), as in `infra/servicenow/manifest.json`.
const GATEHOUSE_VARIABLES: [(&str, &str, &str, &str, &str); 8] = [
    ("cloud", "gatehouse_cloud", "Cloud", "5", ""),
    ("image", "gatehouse_image", "Image", "5", ""),
    ("flavor", "gatehouse_flavor", "Size (flavor)", "5", ""),
    ("network", "gatehouse_network", "Network", "5", ""),
    ("server_name", "gatehouse_server_name", "Server name", "6", ""),
    ("count", "gatehouse_count", "Number of servers", "6", "1"),
    ("lease_days", "gatehouse_lease_days", "Lease (days)", "6", ""),
    ("justification", "gatehouse_justification", "Justification", "2", ""),
];

/// A person of a request item (a `sys_user`). `user_name` defaults to the email address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    pub email: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl PersonSpec {
    pub fn new(email: &str, name: &str, user_name: &str) -> PersonSpec {
        PersonSpec { email: email.into(), name: name.into(), user_name: Some(user_name.into()) }
    }
}

/// The Gatehouse variables of a request item, by their short names. Values may be sent as JSON
/// strings or numbers; they are stored as text, as catalog variables are. A missing variable is
/// stored empty (`count`: its default, "1").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemVariables {
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
    /// Empty: the servers get Gatehouse's default lease.
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub lease_days: Option<String>,
    #[serde(default, deserialize_with = "text", skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

impl ItemVariables {
    /// All six of a VM request.
    pub fn vm(cloud: &str, image: &str, flavor: &str, network: &str, server_name: &str, count: u32) -> ItemVariables {
        ItemVariables {
            cloud: Some(cloud.into()),
            image: Some(image.into()),
            flavor: Some(flavor.into()),
            network: Some(network.into()),
            server_name: Some(server_name.into()),
            count: Some(count.to_string()),
            lease_days: None,
            justification: None,
        }
    }

    fn get(&self, short: &str) -> Option<&str> {
        match short {
            "cloud" => self.cloud.as_deref(),
            "image" => self.image.as_deref(),
            "flavor" => self.flavor.as_deref(),
            "network" => self.network.as_deref(),
            "server_name" => self.server_name.as_deref(),
            "count" => self.count.as_deref(),
            "lease_days" => self.lease_days.as_deref(),
            "justification" => self.justification.as_deref(),
            _ => None,
        }
    }
}

/// A request item ordered from the catalog: the body of `POST /_sim/request_items` and the
/// argument of [`crate::SnSim::create_request_item`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestItemSpec {
    pub requested_for: PersonSpec,
    /// Who ordered it; defaults to `requested_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<PersonSpec>,
    /// `approved` (default), `requested`, `rejected` or `not requested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Defaults to the catalog item's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_description: Option<String>,
    /// Stored only when the catalog item uses the Gatehouse variable set.
    #[serde(default)]
    pub variables: ItemVariables,
    /// The catalog item's sys_id; defaults to [`VM_CATALOG_ITEM`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cat_item: Option<String>,
    /// The item's sys_id (32 lower-case hex digits, unused); a new one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_id: Option<String>,
}

impl RequestItemSpec {
    /// An approved VM item opened by `requested_for` themself.
    pub fn new(requested_for: PersonSpec, variables: ItemVariables) -> RequestItemSpec {
        RequestItemSpec { requested_for, variables, ..RequestItemSpec::default() }
    }
}

/// Why a [`RequestItemSpec`] was refused: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for SpecError {}

fn refuse(field: &str, problem: &str) -> SpecError {
    SpecError { field: field.into(), problem: problem.into() }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom("a variable's value must be a string or a number")),
    }
}

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const SYSTEM: Actor<'static> = Actor { user: SYSTEM_USER, enforce: false };

fn insert(db: &mut Db, table: &str, v: Value) -> String {
    match db.insert(table, &fields(v), &SYSTEM) {
        Ok(id) => id,
        Err(r) => unreachable!("the simulator's own insert into {table} was refused: {}", r.detail),
    }
}

/// The catalog every simulator starts with.
pub(crate) fn seed(db: &mut Db) {
    insert(
        db,
        "item_option_new_set",
        json!({"sys_id": GATEHOUSE_VARIABLE_SET, "title": "Gatehouse VM", "internal_name": "gatehouse_vm",
               "type": "one_to_one", "order": "100"}),
    );
    for (i, (_, name, question, kind, default)) in GATEHOUSE_VARIABLES.iter().enumerate() {
        let mandatory = !matches!(*name, "gatehouse_justification" | "gatehouse_lease_days");
        insert(
            db,
            "item_option_new",
            json!({"name": name, "question_text": question, "type": kind, "order": ((i + 1) * 100).to_string(),
                   "mandatory": mandatory.to_string(), "default_value": default,
                   "variable_set": GATEHOUSE_VARIABLE_SET}),
        );
    }
    add_item(db, Some(VM_CATALOG_ITEM), VM_ITEM_NAME, true);
    add_item(db, Some(LAPTOP_CATALOG_ITEM), LAPTOP_ITEM_NAME, false);
    add_item(db, Some(DECOMMISSION_CATALOG_ITEM), DECOMMISSION_ITEM_NAME, false);
}

/// Adds a catalog item (with the Gatehouse variable set or not) and answers its sys_id.
pub(crate) fn add_item(db: &mut Db, sys_id: Option<&str>, name: &str, gatehouse: bool) -> String {
    let id = insert(db, "sc_cat_item", json!({"sys_id": sys_id, "name": name, "short_description": name}));
    if gatehouse {
        insert(db, "io_set_item", json!({"sc_cat_item": id, "variable_set": GATEHOUSE_VARIABLE_SET, "order": "100"}));
    }
    id
}

/// Whether the catalog item uses the Gatehouse variable set (an `io_set_item` row links them).
fn uses_gatehouse_set(db: &Db, cat_item: &str) -> bool {
    !db.select("io_set_item", &format!("sc_cat_item={cat_item}^variable_set={GATEHOUSE_VARIABLE_SET}")).is_empty()
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The person's `sys_user`: the one with the same user name, else a new one. An existing user
/// keeps its values; only empty ones are filled in.
fn user(db: &mut Db, field: &str, p: &PersonSpec) -> Result<String, SpecError> {
    let email = p.email.trim();
    if email.is_empty() || !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(refuse(&format!("{field}.email"), "must be an email address"));
    }
    let name = p.name.trim();
    if name.is_empty() {
        return Err(refuse(&format!("{field}.name"), "must not be empty"));
    }
    let user_name = p.user_name.as_deref().map(str::trim).unwrap_or(email);
    if user_name.is_empty() {
        return Err(refuse(&format!("{field}.user_name"), "must not be empty when given"));
    }
    if let Some(existing) = db.find("sys_user", "user_name", user_name) {
        let id = existing.get("sys_id").to_string();
        let mut fill = Map::new();
        for (k, v) in [("email", email), ("name", name)] {
            if existing.get(k).is_empty() {
                fill.insert(k.into(), Value::String(v.into()));
            }
        }
        if !fill.is_empty() {
            let _ = db.update("sys_user", &id, &fill, &SYSTEM);
        }
        return Ok(id);
    }
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    Ok(insert(
        db,
        "sys_user",
        json!({"user_name": user_name, "email": email, "name": name, "first_name": first, "last_name": last.trim()}),
    ))
}

/// Orders a request item: its users, its request (`sc_request`), the item, and its variables
/// when the catalog item uses the Gatehouse variable set. Answers (sys_id, number).
pub(crate) fn create_request_item(db: &mut Db, spec: &RequestItemSpec) -> Result<(String, String), SpecError> {
    let approval = spec.approval.as_deref().unwrap_or("approved");
    if !["approved", "requested", "rejected", "not requested"].contains(&approval) {
        return Err(refuse("approval", "must be approved, requested, rejected or not requested"));
    }
    let cat_item = spec.cat_item.as_deref().unwrap_or(VM_CATALOG_ITEM).trim().to_ascii_lowercase();
    let Some(item) = db.row("sc_cat_item", &cat_item) else {
        return Err(refuse("cat_item", "is not the sys_id of a catalog item (sc_cat_item)"));
    };
    let sys_id = match spec.sys_id.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
        None => None,
        Some(id) if !is_sys_id(&id) => return Err(refuse("sys_id", "must be 32 hexadecimal digits")),
        Some(id) if db.row("sc_req_item", &id).is_some() => {
            return Err(refuse("sys_id", "a request item with this sys_id exists already"));
        }
        Some(id) => Some(id),
    };
    let requested_for = user(db, "requested_for", &spec.requested_for)?;
    let opened_by = match &spec.opened_by {
        Some(p) => user(db, "opened_by", p)?,
        None => requested_for.clone(),
    };
    let short_description = spec.short_description.clone().unwrap_or_else(|| item.get("name").to_string());
    // The catalog workflow's stage while it waits for, or after, the item's approval.
    let stage = if approval == "approved" { "fulfillment" } else { "waiting_for_approval" };
    let request = insert(
        db,
        "sc_request",
        json!({"requested_for": requested_for, "opened_by": opened_by, "short_description": short_description,
               "approval": "approved", "request_state": "in_process"}),
    );
    let sys_id = insert(
        db,
        "sc_req_item",
        json!({"sys_id": sys_id, "request": request, "cat_item": cat_item, "requested_for": requested_for,
               "opened_by": opened_by, "approval": approval, "short_description": short_description,
               "stage": stage, "state": "1", "quantity": "1"}),
    );
    if uses_gatehouse_set(db, &cat_item) {
        let variables = GATEHOUSE_VARIABLES
            .iter()
            .map(|(short, name, _, _, default)| {
                (name.to_string(), spec.variables.get(short).unwrap_or(default).to_string())
            })
            .collect();
        db.set_variables(&sys_id, variables);
    }
    let number = db.row("sc_req_item", &sys_id).map(|r| r.get("number").to_string()).unwrap_or_default();
    Ok((sys_id, number))
}
