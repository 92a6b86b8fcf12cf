//! Standard change templates and the standard changes created from them.
//!
//! ServiceNow keeps a standard change template as a record producer in
//! `std_change_record_producer` (the table the Change Management API's
//! `POST /sn_chg_rest/change/standard/{standard_change_template_id}` names), whose `template`
//! refers to a `sys_template` holding the change's field values as an encoded query, and whose
//! published versions are `std_change_producer_version` records (a created change refers to one:
//! see the captured create answer in demisto/content
//! `Packs/ServiceNow/Integrations/ServiceNowv2/test_data/create_co_from_template_result.json`).
//! A change created from a template is type standard, state New, and already approved
//! (`approval` "approved", `approval_set` at creation, in the same captured answer): "Standard
//! changes are pre-authorized, so they bypass the Assess and Authorize states and move from New to
//! Scheduled"
//! (<https://www.servicenow.com/docs/r/australia/it-service-management/change-management/normal-standard-emergency-states.html>).

use serde_json::{Map, Value};

use crate::SYSTEM_USER;
use crate::db::{Actor, Db, Refusal, now};
use crate::schema::def;

/// sys_id of the seeded, active standard change template [`DEPLOY_TEMPLATE_NAME`].
pub const DEPLOY_TEMPLATE: &str = "5d7e9f1a2b3c4d5e6f708192a3b4c5d6";
/// The seeded, active template Gatehouse's demo policy can name.
pub const DEPLOY_TEMPLATE_NAME: &str = "Deploy a reviewed release (Gatehouse)";
/// sys_id of the seeded, retired (inactive) template [`RETIRED_TEMPLATE_NAME`].
pub const RETIRED_TEMPLATE: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
pub const RETIRED_TEMPLATE_NAME: &str = "Deploy by hand (retired)";

pub(crate) const PRODUCERS: &str = "std_change_record_producer";
const TEMPLATES: &str = "sys_template";
const VERSIONS: &str = "std_change_producer_version";

/// Fields the create endpoint does not take from the caller: "Fields that cannot be modified and
/// are ignored if passed in: Description, Backout plan, Test plan, Implementation plan, Read-only
/// fields as defined in ACLs, Fields that do not exist in the specified standard change template"
/// (Change Management API, `POST /sn_chg_rest/change/standard/{standard_change_template_id}`,
/// <https://www.servicenow.com/docs/r/api-reference/rest-apis/change-management-api.html>). The
/// template's own values stand for them; the read-only ones are those the platform or the
/// template sets.
const NOT_TAKEN: &[&str] = &[
    "description",
    "backout_plan",
    "test_plan",
    "implementation_plan",
    "type",
    "state",
    "approval",
    "approval_set",
    "active",
    "number",
    "std_change_producer_version",
    "phase",
];

/// What a new template carries into its changes (field → value), by default.
fn default_values(short_description: &str) -> Vec<(&'static str, String)> {
    vec![
        ("short_description", short_description.to_string()),
        ("description", "Deploys a release that passed review and the pipeline's tests.".into()),
        ("implementation_plan", "Run the deploy job of the release's GitLab pipeline.".into()),
        ("backout_plan", "Redeploy the previous release with its own pipeline.".into()),
        ("test_plan", "The pipeline's smoke tests against the environment.".into()),
        ("category", "Software".into()),
        ("risk", "4".into()),
        ("impact", "3".into()),
    ]
}

/// Adds a template (its `sys_template` values, the producer and its first published version) and
/// answers the producer's sys_id: the id the create endpoint takes.
pub(crate) fn add_template(db: &mut Db, sys_id: Option<&str>, name: &str, active: bool) -> String {
    let admin = Actor { user: SYSTEM_USER, enforce: false };
    let text = |s: &str| Value::String(s.to_string());
    let encoded: String =
        default_values(name).iter().map(|(k, v)| format!("{k}={v}^")).chain(["EQ".to_string()]).collect();
    let mut t = Map::new();
    t.insert("name".into(), text(name));
    t.insert("table".into(), text("change_request"));
    t.insert("template".into(), text(&encoded));
    t.insert("active".into(), text("true"));
    let template = db.insert(TEMPLATES, &t, &admin).unwrap_or_default();
    let mut p = Map::new();
    if let Some(id) = sys_id {
        p.insert("sys_id".into(), text(id));
    }
    p.insert("name".into(), text(name));
    p.insert("short_description".into(), text(&format!("Standard change template: {name}")));
    p.insert("active".into(), text(if active { "true" } else { "false" }));
    p.insert("category".into(), text("Software"));
    p.insert("template".into(), text(&template));
    let producer = db.insert(PRODUCERS, &p, &admin).unwrap_or_default();
    let mut v = Map::new();
    v.insert("name".into(), text(&format!("{name} - 1")));
    v.insert("std_change_producer".into(), text(&producer));
    v.insert("version".into(), text("1"));
    let _ = db.insert(VERSIONS, &v, &admin);
    producer
}

/// The templates every simulator starts with: one active, one retired.
pub(crate) fn seed(db: &mut Db) {
    add_template(db, Some(DEPLOY_TEMPLATE), DEPLOY_TEMPLATE_NAME, true);
    add_template(db, Some(RETIRED_TEMPLATE), RETIRED_TEMPLATE_NAME, false);
}

/// `field=value^field=value^EQ` (a `sys_template`'s values) as pairs.
fn template_values(encoded: &str) -> Vec<(String, String)> {
    encoded
        .split('^')
        .filter(|part| *part != "EQ")
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A change created from the active template `producer` with the caller's `body`: answers its
/// sys_id and the body's fields it ignored (`__meta.ignoredFields`). No such active template:
/// the 404 the API documents ("The specified record could not be found").
pub(crate) fn create_change(
    db: &mut Db,
    producer: &str,
    body: &Map<String, Value>,
    user: &str,
) -> Result<(String, Vec<String>), Refusal> {
    let Some(row) = db.row(PRODUCERS, producer).filter(|r| r.get("active") == "true") else {
        return Err(Refusal {
            status: 404,
            // The text of this answer is not published; this is the platform's record-not-found
            // body, as the Table API gives it.
            message: "No Record found".into(),
            detail: "Record doesn't exist or ACL restricts the record retrieval".into(),
        });
    };
    let mut fields = Map::new();
    if let Some(template) = db.row(TEMPLATES, row.get("template")) {
        for (k, v) in template_values(template.get("template")) {
            fields.insert(k, Value::String(v));
        }
    }
    let change_table = def("change_request");
    let mut ignored = Vec::new();
    for (k, v) in body {
        let known = change_table.as_ref().is_some_and(|d| d.has(k)) || k.starts_with("u_");
        if !known || NOT_TAKEN.contains(&k.as_str()) || k.starts_with("sys_") {
            ignored.push(k.clone());
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
    let version = db
        .rows(VERSIONS)
        .into_iter()
        .filter(|v| v.get("std_change_producer") == producer)
        .max_by_key(|v| v.get("version").parse::<u64>().unwrap_or(0))
        .map(|v| v.get("sys_id").to_string())
        .unwrap_or_default();
    for (k, v) in [
        ("type", "standard".to_string()),
        ("approval", "approved".to_string()),
        ("approval_set", now()),
        ("std_change_producer_version", version),
    ] {
        fields.insert(k.into(), Value::String(v));
    }
    let sys_id = db.insert("change_request", &fields, &Actor { user, enforce: true })?;
    Ok((sys_id, ignored))
}
