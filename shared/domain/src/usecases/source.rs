//! The request item as ServiceNow holds it is the truth: intake compares the posted body with it
//! (DESIGN.md, "Intake is checked at the source"), and provisioning reads it again just before it
//! creates anything, so an item cancelled after approval never gets its VMs.

use jiff::{SignedDuration, Timestamp};

use super::Services;
use super::intake::{IntakeBody, RequesterBody};
use crate::config::ServiceNowSettings;
use crate::error::{Error, FieldError, Result};
use crate::identity::same_person;
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{OutboxMessage, Request, Requester, Status};
use crate::ports::{SourceItem, SourcePerson, Write};

/// sc_req_item states that end an item: Closed Complete, Closed Incomplete, Closed Skipped.
const CLOSED_STATES: [&str; 3] = ["3", "4", "7"];

/// Who the item says asked, as intake records them.
pub struct SourcePeople {
    pub requester: Requester,
    pub opened_by: Option<Requester>,
}

fn person(p: &SourcePerson) -> Requester {
    Requester {
        email: p.email.clone(),
        name: p.name.clone(),
        user_name: (!p.user_name.is_empty()).then(|| p.user_name.clone()),
    }
}

fn same_as(field: &str, body: &RequesterBody, recorded: &SourcePerson, errors: &mut Vec<FieldError>) {
    if !same_person(&body.email, &recorded.email) {
        errors.push(FieldError::new(
            format!("{field}.email"),
            format!("ServiceNow records {} as {field} of this item", recorded.email),
        ));
    }
}

/// What the body asks for, by the item's variable names.
fn asked(body: &IntakeBody) -> [(&'static str, String); 6] {
    [
        ("cloud", body.cloud.clone()),
        ("image", body.image.clone()),
        ("flavor", body.flavor.clone()),
        ("network", body.network.clone()),
        ("server_name", body.server_name.clone()),
        ("count", body.count.to_string()),
    ]
}

/// The lease the item was ordered with (its optional `lease_days` variable) against the body's.
/// `lease_days` must be the item's: a lease cannot be dropped on the way (a body without one for
/// an item that has one), added, or changed. `retire_at` (the API's, not the form's) may only end
/// the servers sooner than the item allows: no later than its lease from now, or, for an item
/// without one, the default lease (`default_days`; none: any time).
fn check_lease(
    body: &IntakeBody,
    item: &SourceItem,
    default_days: Option<u32>,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) {
    let ordered = item.variables.get("lease_days").map(|v| v.trim());
    let latest = |days: u32| now + SignedDuration::from_hours(24 * i64::from(days));
    if let Some(at) = body.retire_at.as_deref().and_then(|t| t.parse::<Timestamp>().ok()) {
        let allowed = match ordered {
            Some(days) => days.parse::<u32>().ok(),
            None => default_days,
        };
        match allowed {
            Some(days) if at > latest(days) => errors.push(FieldError::new(
                "retire_at",
                format!("{} allows a lease of at most {days} days: retire_at may not be later", item.number),
            )),
            _ => {}
        }
        // A retire_at in range stands for the item's lease; the form itself sends lease_days.
        if body.lease_days.is_none() {
            return;
        }
    }
    match (ordered, body.lease_days) {
        (None, None) => {}
        (Some(ordered), Some(sent)) if ordered == sent.to_string() => {}
        (Some(ordered), Some(sent)) => errors.push(FieldError::new(
            "lease_days",
            format!("ServiceNow approved {ordered:?} for this item, not \"{sent}\""),
        )),
        (Some(ordered), None) => errors.push(FieldError::new(
            "lease_days",
            format!("{} was approved with a lease of {ordered:?} days: send it", item.number),
        )),
        (None, Some(_)) => errors.push(FieldError::new(
            "lease_days",
            format!("{} was ordered without a lease (its lease_days variable is empty)", item.number),
        )),
    }
}

/// Compares the body with the item; every mismatch is a 422 naming the body's field.
/// `default_lease_days` is the lease the cloud gives a request without one.
pub fn check_item(
    body: &IntakeBody,
    item: &SourceItem,
    settings: &ServiceNowSettings,
    default_lease_days: Option<u32>,
) -> Result<SourcePeople> {
    let refuse = |field: &str, message: String| Err(Error::invalid(field, message));
    if item.number != body.source.number {
        return refuse("source.number", format!("the item with this sys_id is {}", item.number));
    }
    if !item.active || CLOSED_STATES.contains(&item.state.as_str()) {
        return refuse("source.sys_id", format!("{} is closed or cancelled in ServiceNow", item.number));
    }
    if settings.require_ritm_approval && item.approval != "approved" {
        return refuse(
            "source.sys_id",
            format!("{} is not approved in ServiceNow (approval: {})", item.number, item.approval),
        );
    }
    let gatehouse_item = if settings.catalog_items.is_empty() {
        // Any item that carries the Gatehouse variable set.
        item.variables.contains_key("cloud")
    } else {
        settings.catalog_items.contains(&item.cat_item.to_ascii_lowercase())
    };
    if !gatehouse_item {
        return refuse(
            "source.sys_id",
            format!("{} is an item of a catalog item Gatehouse does not provision ({})", item.number, item.cat_item),
        );
    }
    let mut errors = Vec::new();
    for (name, value) in asked(body) {
        match item.variables.get(name).map(|v| v.trim()) {
            Some(approved) if approved == value.trim() => {}
            Some(approved) => errors.push(FieldError::new(
                name,
                format!("ServiceNow approved {approved:?} for this item, not {:?}", value.trim()),
            )),
            None => errors.push(FieldError::new(name, format!("{} has no {name} variable", item.number))),
        }
    }
    check_lease(body, item, default_lease_days, Timestamp::now(), &mut errors);
    let Some(requested_for) = &item.requested_for else {
        return refuse("requester.email", format!("{} names nobody as requested for", item.number));
    };
    same_as("requester", &body.requester, requested_for, &mut errors);
    if let Some(opened_by) = &body.opened_by {
        match &item.opened_by {
            Some(recorded) => same_as("opened_by", opened_by, recorded, &mut errors),
            None => errors.push(FieldError::new("opened_by.email", format!("{} has no opened_by", item.number))),
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(SourcePeople { requester: person(requested_for), opened_by: item.opened_by.as_ref().map(person) })
}

impl Services {
    /// With ServiceNow configured: the item behind `body`, checked. Without: `None` (the body is
    /// trusted, as the README says).
    pub(crate) async fn people_at_source(&self, body: &IntakeBody) -> Result<Option<SourcePeople>> {
        let (Some(items), Some(settings)) = (&self.source_items, &self.config.servicenow) else { return Ok(None) };
        let item = items.request_item(&body.source.sys_id).await?.ok_or_else(|| {
            Error::invalid(
                "source.sys_id",
                "ServiceNow has no request item with this sys_id (or Gatehouse may not read it)",
            )
        })?;
        let default_lease_days = self.config.leases.for_cloud(&body.cloud).default_days;
        check_item(body, &item, settings, default_lease_days).map(Some)
    }

    /// Just before provisioning starts: `true` when the item was closed or cancelled meanwhile, in
    /// which case the request is now `cancelled` (and the requester mailed). `Stale` when the
    /// request moved meanwhile.
    pub(crate) async fn cancelled_at_source(&self, request: &Request) -> Result<bool> {
        let Some(items) = &self.source_items else { return Ok(false) };
        let item = items.request_item(&request.source.sys_id).await?;
        let ended = match &item {
            None => Some("the request item no longer exists in ServiceNow".to_string()),
            Some(i) if !i.active || CLOSED_STATES.contains(&i.state.as_str()) => {
                Some(format!("{} was closed in ServiceNow before the VMs were created", i.number))
            }
            Some(_) => None,
        };
        let Some(reason) = ended else { return Ok(false) };
        let mut request = request.clone();
        let now = Timestamp::now();
        let expected = request.version;
        let history = request.transition(Status::Cancelled, "servicenow", Some(reason.clone()), now)?;
        let mut messages = vec![OutboxMessage::mail(
            &request.id,
            now,
            MailNotice { to: request.requester.email.clone(), template: MailTemplate::Cancelled },
        )];
        messages.extend(self.work_note(&request, now, format!("Gatehouse created nothing: {reason}."), None));
        let write = Write { history: vec![history], messages, ..Write::new(request, expected) };
        match self.store.apply(write).await {
            Ok(request) => {
                tracing::info!(request = %request.id, "cancelled at the source before provisioning");
                self.signals.messages_owed();
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}
