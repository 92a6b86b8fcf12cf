//! The audit page's search (DESIGN.md "Audit evidence"): the records touched in a period, walked
//! in the export's order (`touched_page`), each summed up as a `RecordSummary` and kept when a
//! `SearchFilter` matches it. A search stops at `MAX_MATCHES` matches or after `MAX_SCANNED`
//! records, and hands on where it stopped, so one call stays short however long the period.
//!
//! The summary and the filter know nothing of what kind of record they describe: another kind
//! (a change) joins the walk with a summary of its own and the same filter.

use jiff::Timestamp;
use serde::Serialize;

use super::Services;
use super::audit::{ExportCursor, Period};
use crate::changes::{ChangeEvent, ChangeRecord};
use crate::error::{Error, Result};
use crate::model::Request;

/// The most matches one search answers.
pub const MAX_MATCHES: usize = 50;
/// The most records one search reads before it hands on a cursor.
pub const MAX_SCANNED: usize = 2_000;
/// How many records the walk asks the store for at a time.
const CHUNK: usize = 200;
/// The longest value a filter field takes.
const MAX_FILTER_LEN: usize = 200;

/// What kind of record a summary describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A provisioning request.
    Request,
    /// A change record of the CI gate.
    Change,
}

/// One record as a search lists it: what identifies it, who is on it, where it ran, how it stands,
/// and where its evidence is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSummary {
    pub kind: RecordKind,
    pub id: String,
    /// The ServiceNow number (request item or change).
    pub number: String,
    pub title: String,
    /// Everyone on the record: "Name <address>" where a name is known, else the address.
    pub people: Vec<String>,
    pub cloud: Option<String>,
    pub environment: Option<String>,
    pub status: String,
    pub updated_at: Timestamp,
    /// The path of the record's evidence (`GET`, scope `audit`).
    pub evidence_url: String,
}

impl RecordSummary {
    /// A provisioning request: its requester, whoever opened the item, every approver it was
    /// routed to (stage members and escalations), every delegate who decided, and the decider.
    pub fn of_request(request: &Request) -> RecordSummary {
        let mut people = Vec::new();
        let mut add = |person: String| {
            if !person.is_empty() && !people.contains(&person) {
                people.push(person);
            }
        };
        let named = |name: &str, email: &str| {
            if name.trim().is_empty() { email.to_string() } else { format!("{name} <{email}>") }
        };
        add(named(&request.requester.name, &request.requester.email));
        if let Some(opened_by) = &request.opened_by {
            add(named(&opened_by.name, &opened_by.email));
        }
        request.approvers.iter().for_each(|a| add(a.clone()));
        if let Some(approval) = &request.approval {
            for stage in &approval.stages {
                stage.members.iter().chain(&stage.escalated_to).for_each(|a| add(a.clone()));
                for approved in &stage.approved_by {
                    add(approved.approver.clone());
                    if let Some(delegate) = &approved.delegate {
                        add(delegate.clone());
                    }
                }
            }
        }
        if let Some(decided_by) = &request.decided_by {
            add(decided_by.clone());
        }
        let count = if request.count > 1 { format!("{} × ", request.count) } else { String::new() };
        RecordSummary {
            kind: RecordKind::Request,
            id: request.id.to_string(),
            number: request.source.number.clone(),
            title: format!(
                "{}: {count}{} with {} on {}",
                request.server_name, request.flavor.name, request.image.name, request.cloud
            ),
            people,
            cloud: Some(request.cloud.clone()),
            environment: None,
            status: request.status.as_str().to_string(),
            updated_at: request.updated_at,
            evidence_url: format!("/v1/requests/{}/evidence", request.id),
        }
    }
}

impl RecordSummary {
    /// A change record: the project, commit and environment it gates, and who asked for it (each
    /// pipeline's job, and the user it ran as, as its ID token named them).
    pub fn of_change(record: &ChangeRecord) -> RecordSummary {
        let mut people: Vec<String> = Vec::new();
        for entry in record.history.iter().filter(|e| e.event == ChangeEvent::Requested) {
            for person in entry.user.iter().chain([&entry.actor]) {
                if !people.contains(person) {
                    people.push(person.clone());
                }
            }
        }
        let key = &record.key;
        RecordSummary {
            kind: RecordKind::Change,
            id: key.record_id(),
            number: record.number.clone(),
            title: format!(
                "{} {} to {}: {}",
                record.project_path,
                &key.sha[..key.sha.len().min(8)],
                key.environment,
                record.title
            ),
            people,
            cloud: None,
            environment: Some(key.environment.clone()),
            status: record.status().to_string(),
            updated_at: record.updated_at,
            evidence_url: format!(
                "/v1/changes/{}/{}/evidence?environment={}",
                key.project_id,
                key.sha,
                form_urlencoded_environment(&key.environment)
            ),
        }
    }
}

/// An environment name in a query string: its characters are letters, digits and `-_./`, of
/// which only `/` is escaped.
fn form_urlencoded_environment(environment: &str) -> String {
    environment.replace('/', "%2F")
}

/// What a search keeps: every field given must match (none given: everything in the period).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// The ServiceNow number, exactly (any case).
    pub number: Option<String>,
    /// Part of anyone's name or address on the record (any case).
    pub person: Option<String>,
    pub cloud: Option<String>,
    pub environment: Option<String>,
    pub status: Option<String>,
}

/// A filter field's value: trimmed; empty is not given; too long is a 422 naming the field.
fn field(name: &str, value: Option<&str>) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > MAX_FILTER_LEN => {
            Err(Error::invalid(name, format!("is longer than {MAX_FILTER_LEN} characters")))
        }
        Some(v) if v.chars().any(char::is_control) => Err(Error::invalid(name, "holds a control character")),
        Some(v) => Ok(Some(v.to_string())),
    }
}

impl SearchFilter {
    /// The filter from the search's fields, each checked (see `field`).
    pub fn new(
        number: Option<&str>,
        person: Option<&str>,
        cloud: Option<&str>,
        environment: Option<&str>,
        status: Option<&str>,
    ) -> Result<SearchFilter> {
        Ok(SearchFilter {
            number: field("number", number)?,
            person: field("person", person)?.map(|p| p.to_lowercase()),
            cloud: field("cloud", cloud)?,
            environment: field("environment", environment)?,
            status: field("status", status)?,
        })
    }

    pub fn matches(&self, record: &RecordSummary) -> bool {
        let same = |wanted: &Option<String>, value: Option<&str>| match wanted {
            None => true,
            Some(w) => value.is_some_and(|v| v.to_lowercase() == w.to_lowercase()),
        };
        same(&self.number, Some(&record.number))
            && same(&self.cloud, record.cloud.as_deref())
            && same(&self.environment, record.environment.as_deref())
            && same(&self.status, Some(&record.status))
            && self.person.as_ref().is_none_or(|p| record.people.iter().any(|who| who.to_lowercase().contains(p)))
    }
}

/// One search's answer: the matches in the walk's order, where to go on (when the walk stopped
/// before the period's end) and how many records it read.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub results: Vec<RecordSummary>,
    pub next: Option<ExportCursor>,
    pub scanned: usize,
}

impl Services {
    /// Walks the records touched in `period` from `after` (the requests, then the change records,
    /// as the export does), keeping those `filter` matches, until `MAX_MATCHES` matches,
    /// `MAX_SCANNED` records read, or the period's end.
    pub async fn search_touched(
        &self,
        period: &Period,
        filter: &SearchFilter,
        after: Option<ExportCursor>,
    ) -> Result<SearchPage> {
        let mut cursor = after;
        let mut results = Vec::new();
        let mut scanned = 0;
        loop {
            let room = CHUNK.min(MAX_SCANNED - scanned);
            let among_requests = !matches!(cursor, Some(ExportCursor::Change(_)));
            // Each listed record at its place, summed up; `None`: written again since the store
            // listed it, so it comes at its new place.
            let (listed, more): (Vec<(ExportCursor, Option<RecordSummary>)>, bool) = match &cursor {
                Some(ExportCursor::Change(after)) => {
                    let page = self.changes_page(period, after.as_ref(), room).await?;
                    let listed = page.candidates.into_iter().map(|c| {
                        (ExportCursor::Change(Some(c.position)), c.record.as_ref().map(RecordSummary::of_change))
                    });
                    (listed.collect(), page.more)
                }
                _ => {
                    let after = match &cursor {
                        Some(ExportCursor::Request(p)) => Some(p),
                        _ => None,
                    };
                    let page = self.touched_page(period, after, room).await?;
                    let listed = page.candidates.into_iter().map(|c| {
                        (ExportCursor::Request(c.position), c.request.as_ref().map(RecordSummary::of_request))
                    });
                    (listed.collect(), page.more)
                }
            };
            let total = listed.len();
            for (i, (place, summary)) in listed.into_iter().enumerate() {
                scanned += 1;
                cursor = Some(place);
                let Some(summary) = summary.filter(|s| filter.matches(s)) else { continue };
                results.push(summary);
                if results.len() == MAX_MATCHES {
                    let rest = i + 1 < total || more || among_requests;
                    return Ok(SearchPage { results, next: cursor.filter(|_| rest), scanned });
                }
            }
            if !more || total == 0 {
                if !among_requests {
                    return Ok(SearchPage { results, next: None, scanned });
                }
                cursor = Some(ExportCursor::Change(None));
            }
            if scanned >= MAX_SCANNED {
                return Ok(SearchPage { results, next: cursor, scanned });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::{Approval, Stage, StageApproval, StageState};
    use crate::model::{Requester, Status};

    fn summary(people: &[&str]) -> RecordSummary {
        RecordSummary {
            kind: RecordKind::Request,
            id: "r1".into(),
            number: "RITM0010001".into(),
            title: "web-01".into(),
            people: people.iter().map(|p| p.to_string()).collect(),
            cloud: Some("pcd-east".into()),
            environment: None,
            status: "active".into(),
            updated_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            evidence_url: "/v1/requests/r1/evidence".into(),
        }
    }

    fn filter(number: &str, person: &str, cloud: &str, environment: &str, status: &str) -> SearchFilter {
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        SearchFilter::new(some(number), some(person), some(cloud), some(environment), some(status)).unwrap()
    }

    #[test]
    fn every_given_field_must_match_in_any_case() {
        let s = summary(&["Ada Lovelace <ada@example.com>", "ops@example.com"]);
        assert!(SearchFilter::default().matches(&s));
        assert!(filter("ritm0010001", "", "", "", "").matches(&s));
        assert!(!filter("RITM001000", "", "", "", "").matches(&s), "the number is exact");
        assert!(filter("", "LOVELACE", "", "", "").matches(&s));
        assert!(filter("", "ops@EXAMPLE", "", "", "").matches(&s));
        assert!(!filter("", "bob@example.com", "", "", "").matches(&s));
        assert!(filter("", "ada", "PCD-east", "", "Active").matches(&s));
        assert!(!filter("", "ada", "pcd-west", "", "").matches(&s));
        assert!(!filter("", "", "", "", "denied").matches(&s));
        assert!(!filter("", "", "", "production", "").matches(&s), "a request has no environment");
    }

    #[test]
    fn filter_fields_are_trimmed_and_checked() {
        assert_eq!(filter(" ", "  ", "", "", ""), SearchFilter::default(), "empty is not given");
        let long = "x".repeat(MAX_FILTER_LEN + 1);
        for (name, f) in [
            ("number", SearchFilter::new(Some(&long), None, None, None, None)),
            ("person", SearchFilter::new(None, Some("a\u{0}b"), None, None, None)),
            ("status", SearchFilter::new(None, None, None, None, Some(&long))),
        ] {
            match f {
                Err(Error::Invalid(errors)) => assert_eq!(errors[0].field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_requests_summary_names_everyone_on_it_once() {
        let mut request: Request = serde_json::from_value(serde_json::json!({
            "id": crate::model::RequestId::generate(), "status": "pending_approval", "version": 1,
            "source": {"system": "servicenow", "number": "RITM0010001", "sys_id": "9d385017c611228701d22104cc95c371"},
            "requester": {"email": "x@example.com", "name": "X"}, "cloud": "pcd-east",
            "image": {"id": "i", "name": "Ubuntu"}, "flavor": {"id": "f", "name": "m1.small"},
            "network": {"id": "n", "name": "dev-net"}, "boot_volume_gb": null, "server_name": "web-01", "count": 2,
            "justification": null, "metadata": {}, "approvers": [], "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-03T00:00:00Z", "due_at": null,
            "reminded": false, "deadline": null, "lease": null, "servers": [], "error": null,
            "decision_comment": null, "decided_by": null, "intake_digest": "d"
        }))
        .unwrap();
        request.requester = Requester { email: "ada@example.com".into(), name: "Ada Lovelace".into(), user_name: None };
        request.opened_by = Some(Requester { email: "bob@example.com".into(), name: String::new(), user_name: None });
        request.approvers = vec!["ops@example.com".into()];
        request.decided_by = Some("deputy@example.com".into());
        request.status = Status::Approved;
        request.approval = Some(Approval {
            rule: "default".into(),
            auto_approved: false,
            stages: vec![Stage {
                group: "platform".into(),
                quorum: 1,
                members: vec!["ops@example.com".into()],
                state: StageState::Passed,
                approved_by: vec![StageApproval {
                    approver: "ops@example.com".into(),
                    delegate: Some("deputy@example.com".into()),
                    at: request.created_at,
                    proof: "link only".into(),
                }],
                opened_at: None,
                escalated_to: vec!["boss@example.com".into()],
                escalated_at: None,
            }],
        });
        let s = RecordSummary::of_request(&request);
        assert_eq!(
            s.people,
            [
                "Ada Lovelace <ada@example.com>",
                "bob@example.com",
                "ops@example.com",
                "boss@example.com",
                "deputy@example.com"
            ]
        );
        assert_eq!((s.kind, s.status.as_str(), s.environment.as_deref()), (RecordKind::Request, "approved", None));
        assert_eq!(s.evidence_url, format!("/v1/requests/{}/evidence", request.id));
        assert_eq!(s.title, "web-01: 2 × m1.small with Ubuntu on pcd-east");
        assert!(filter("", "deputy", "", "", "").matches(&s));
    }
}
