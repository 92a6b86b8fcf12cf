//! `gatehouse audit verify --anchors` (DESIGN.md "Audit evidence", anchored outside Gatehouse):
//! every work note Gatehouse writes on a request item or a change, and every MR note, ends with the
//! record's head as it stood then (`gatehouse-chain: <count>:<hash>`). ServiceNow and GitLab keep
//! those lines where Gatehouse's operators cannot rewrite them, so each one is checked against the
//! record Gatehouse holds now: chained entry `count` must still be there with that hash. A history
//! cut short and given a matching head (which the chain alone cannot show), or a record deleted,
//! is caught.
//!
//! The records come from the export walked for the chain check; a record ServiceNow holds anchors
//! of that the export of the period did not bring is asked for by its sys_id
//! (`/v1/audit/records?servicenow_sys_id=`): a 404 there means Gatehouse's record is gone.

mod outside;

use std::collections::HashMap;

use domain::evidence::{ChainHead, anchor_line, check_anchor, parse_anchors};
use jiff::Timestamp;
use serde_json::Value;

use outside::{Anchored, GitLab, ServiceNow};

use super::Fail;
use super::walk::{Export, one_line};

/// Where the anchors are read: ServiceNow always, GitLab when its URL is given. Built (and the
/// credentials read) before anything is walked, so a missing one fails at once.
pub(super) struct Outside {
    servicenow: ServiceNow,
    gitlab: Option<GitLab>,
}

impl Outside {
    pub(super) fn from_env(
        servicenow_url: &str,
        servicenow_author: Option<&str>,
        gitlab_url: Option<&str>,
    ) -> Result<Outside, Fail> {
        Ok(Outside {
            servicenow: ServiceNow::from_env(servicenow_url, servicenow_author)?,
            gitlab: gitlab_url.map(GitLab::from_env).transpose()?,
        })
    }
}

/// An MR note a change record names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MrNote {
    project: String,
    mr_iid: u64,
    note_id: u64,
}

/// A record of the export as its anchors are checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    kind: String,
    id: String,
    number: String,
    table: String,
    sys_id: String,
    chain_ok: bool,
    chain_break: String,
    head: ChainHead,
    /// The hashes of the chained entries, oldest first (entries from before chaining left out).
    chained: Vec<String>,
    note: Option<MrNote>,
}

impl Held {
    /// The parts of an evidence record (a request's, or a change's) the check reads. The head is
    /// the record's `chain` (a request's `request.chain` for a Gatehouse without the top-level one).
    pub(super) fn of(record: &Value) -> Held {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let kind = record["kind"].as_str().unwrap_or("request").to_string();
        let table = record["servicenow"]["table"]
            .as_str()
            .unwrap_or(if kind == "change" { "change_request" } else { "sc_req_item" })
            .to_string();
        let chain = if record["chain"].is_object() { &record["chain"] } else { &record["request"]["chain"] };
        let head = ChainHead { count: chain["count"].as_u64().unwrap_or(0), hash: text(&chain["hash"]) };
        let history = record["history"].as_array().map(Vec::as_slice).unwrap_or_default();
        let gitlab = &record["gitlab"];
        let project = match &gitlab["project_id"] {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        };
        let note = match (project, gitlab["merge_request_iid"].as_u64(), gitlab["note_id"].as_u64()) {
            (Some(project), Some(mr_iid), Some(note_id)) => Some(MrNote { project, mr_iid, note_id }),
            _ => None,
        };
        let broken = &record["chain_break"];
        Held {
            id: text(&record["id"]),
            number: text(&record["servicenow"]["number"]),
            sys_id: text(&record["servicenow"]["sys_id"]).to_ascii_lowercase(),
            chain_ok: record["chain_ok"] == true,
            chain_break: format!(
                "history entry {} is broken: {}",
                broken["entry"],
                one_line(broken["reason"].as_str().unwrap_or("no reason given"))
            ),
            head,
            chained: history.iter().filter_map(|e| e["hash"].as_str().map(str::to_string)).collect(),
            note,
            kind,
            table,
        }
    }

    /// `request 0190… (RITM0010001, sc_req_item 0123…)`.
    fn name(&self) -> String {
        format!("{} {} ({}, {} {})", self.kind, self.id, self.number, self.table, self.sys_id)
    }

    /// Checks one anchor; the `Err` is the line to print.
    fn check(&self, anchor: &ChainHead, written_where: &str) -> Result<(), String> {
        let chained: Vec<&str> = self.chained.iter().map(String::as_str).collect();
        check_anchor(&chained, &self.head, anchor)
            .map_err(|why| format!("{}: the anchor {} {written_where}: {why}", self.name(), anchor_line(anchor)))
    }
}

/// The records of the export, by ServiceNow table and sys_id, and the change records' MR notes.
#[derive(Default)]
pub(super) struct Records {
    by_sys_id: HashMap<(String, String), Held>,
    with_notes: Vec<Held>,
}

impl Records {
    pub(super) fn add(&mut self, record: &Value) {
        let held = Held::of(record);
        if held.note.is_some() {
            self.with_notes.push(held.clone());
        }
        if !held.sys_id.is_empty() {
            self.by_sys_id.insert((held.table.clone(), held.sys_id.clone()), held);
        }
    }
}

/// What the anchors showed: how many were checked, or the first that does not hold.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Held { servicenow: usize, gitlab: usize, records: usize },
    Broken(String),
}

/// Checks every anchor ServiceNow holds from [`since`, `until`), record by record in the order
/// their first anchor was written, then (with GitLab) the MR note of every change record.
pub(super) async fn check(
    outside: &Outside,
    export: &Export,
    records: &Records,
    since: Timestamp,
    until: Timestamp,
) -> Result<Outcome, Fail> {
    let anchors = outside.servicenow.anchors(since, until).await?;
    let mut order: Vec<(String, String)> = Vec::new();
    let mut of_record: HashMap<(String, String), Vec<&Anchored>> = HashMap::new();
    for a in &anchors {
        let key = (a.table.clone(), a.sys_id.clone());
        let list = of_record.entry(key.clone()).or_default();
        if list.is_empty() {
            order.push(key);
        }
        list.push(a);
    }
    let mut checked_records = 0;
    for key in &order {
        let anchored = &of_record[key];
        let held = match records.by_sys_id.get(key) {
            Some(held) => held.clone(),
            None => match export.record_of_servicenow(&key.1).await? {
                Some(record) => Held::of(&record),
                None => match earlier_change(outside, export, key).await? {
                    Some(record) => Held::of(&record),
                    None => return Ok(Outcome::Broken(missing(key, anchored))),
                },
            },
        };
        if !held.chain_ok {
            return Ok(Outcome::Broken(format!("{}: {}", held.name(), held.chain_break)));
        }
        for a in anchored {
            if let Err(line) = held.check(&a.anchor, &format!("in the work note of {} UTC", a.written)) {
                return Ok(Outcome::Broken(line));
            }
        }
        checked_records += 1;
    }
    let mut gitlab = 0;
    if let Some(gl) = &outside.gitlab {
        for held in &records.with_notes {
            let Some(note) = &held.note else { continue };
            let place = format!("project {} merge request !{} note {}", note.project, note.mr_iid, note.note_id);
            let Some(body) = gl.note(&note.project, note.mr_iid, note.note_id).await? else {
                return Ok(Outcome::Broken(format!(
                    "{}: its MR note is gone ({place} answers 404): the anchor GitLab held cannot be checked",
                    held.name()
                )));
            };
            for anchor in parse_anchors(&body) {
                if let Err(line) = held.check(&anchor, &format!("in {place}")) {
                    return Ok(Outcome::Broken(line));
                }
                gitlab += 1;
            }
            checked_records += 1;
        }
    }
    Ok(Outcome::Held { servicenow: anchors.len(), gitlab, records: checked_records })
}

/// The change record an earlier change of a commit and environment belongs to (one cancelled, and
/// followed by a new change, which the record now names): found through the change's
/// `correlation_id` in ServiceNow, `gitlab:<project_id>:<sha>:<environment>`.
async fn earlier_change(outside: &Outside, export: &Export, key: &(String, String)) -> Result<Option<Value>, Fail> {
    if key.0 != "change_request" {
        return Ok(None);
    }
    let Some(correlation) = outside.servicenow.correlation_of_change(&key.1).await? else { return Ok(None) };
    let mut parts = correlation.splitn(4, ':');
    let (Some("gitlab"), Some(project), Some(sha), Some(environment)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Ok(project) = project.parse::<u64>() else { return Ok(None) };
    export.change_record(project, sha, environment).await
}

/// A record ServiceNow holds anchors of that Gatehouse no longer has: its table, its sys_id and
/// the latest anchor (the most entries it had then).
fn missing(key: &(String, String), anchored: &[&Anchored]) -> String {
    let latest = anchored.iter().max_by_key(|a| (a.anchor.count, a.written.clone()));
    let latest = latest
        .map(|a| format!("; its latest anchor, written at {} UTC: {}", a.written, anchor_line(&a.anchor)))
        .unwrap_or_default();
    format!(
        "{} {}: Gatehouse's record is missing (deleted?): ServiceNow holds {} anchor(s) of it, Gatehouse has no record of that sys_id{latest}",
        key.0,
        key.1,
        anchored.len()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn request_record() -> Value {
        json!({
            "kind": "request", "id": "0190e8d4-0000-7000-8000-000000000001", "chain_ok": true, "chain_break": null,
            "chain": {"count": 3, "hash": hash('c')},
            "servicenow": {"number": "RITM0010001", "sys_id": "0123456789ABCDEF0123456789abcdef"},
            "history": [{"hash": hash('a')}, {"hash": hash('b')}, {"hash": hash('c')}],
            "request": {"chain": {"count": 3, "hash": hash('c')}}
        })
    }

    #[test]
    fn a_request_record_is_read_with_its_head_and_hashes() {
        let held = Held::of(&request_record());
        assert_eq!((held.table.as_str(), held.sys_id.as_str()), ("sc_req_item", "0123456789abcdef0123456789abcdef"));
        assert_eq!(held.head, ChainHead { count: 3, hash: hash('c') });
        assert_eq!(held.chained, [hash('a'), hash('b'), hash('c')]);
        assert!(held.check(&ChainHead { count: 2, hash: hash('b') }, "here").is_ok());
        let cut = held.check(&ChainHead { count: 5, hash: hash('e') }, "written on sc_req_item x").unwrap_err();
        assert!(
            cut.starts_with("request 0190e8d4-0000-7000-8000-000000000001 (RITM0010001, sc_req_item 0123"),
            "{cut}"
        );
        assert!(cut.contains(&format!("gatehouse-chain: 5:{}", hash('e'))) && cut.contains("removed"), "{cut}");
        let edited = held.check(&ChainHead { count: 1, hash: hash('z') }, "here").unwrap_err();
        assert!(edited.contains("rewritten"), "{edited}");
        // Without the top-level head (an older Gatehouse), the request's own is read.
        let mut older = request_record();
        older.as_object_mut().unwrap().remove("chain");
        assert_eq!(Held::of(&older).head, held.head);
    }

    #[test]
    fn a_change_record_names_its_mr_note_and_table() {
        let record = json!({
            "kind": "change", "id": "4242/af5b/production", "chain_ok": true, "chain_break": null,
            "chain": {"count": 1, "hash": hash('a')}, "history": [{"hash": hash('a')}],
            "servicenow": {"table": "change_request", "number": "CHG0030001", "sys_id": "ab".repeat(16)},
            "gitlab": {"project_id": 4242, "merge_request_iid": 7, "note_id": 301}
        });
        let mut records = Records::default();
        records.add(&record);
        records.add(&request_record());
        assert_eq!(records.with_notes.len(), 1);
        let held = &records.with_notes[0];
        assert_eq!(held.note, Some(MrNote { project: "4242".into(), mr_iid: 7, note_id: 301 }));
        assert!(records.by_sys_id.contains_key(&("change_request".to_string(), "ab".repeat(16))));
        let mut no_note = record.clone();
        no_note["gitlab"] = json!({"project_id": 4242, "merge_request_iid": 7});
        assert_eq!(Held::of(&no_note).note, None, "a change without its note is skipped");
    }

    #[test]
    fn a_missing_record_is_named_with_its_latest_anchor() {
        let a = |count, written: &str| Anchored {
            table: "sc_req_item".into(),
            sys_id: "ab".repeat(16),
            written: written.into(),
            anchor: ChainHead { count, hash: hash('f') },
        };
        let (first, last) = (a(2, "2026-01-01 10:00:00"), a(6, "2026-01-01 10:05:00"));
        let line = missing(&("sc_req_item".into(), "ab".repeat(16)), &[&first, &last]);
        assert!(line.starts_with(&format!("sc_req_item {}: Gatehouse's record is missing", "ab".repeat(16))), "{line}");
        assert!(line.contains(&format!("2026-01-01 10:05:00 UTC: gatehouse-chain: 6:{}", hash('f'))), "{line}");
    }
}
