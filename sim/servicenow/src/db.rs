//! The simulated instance's records: tables, journals, request item variables, encoded queries
//! and the business rules of the change state model. How records are shown is in `render.rs`;
//! the tables and their fields in `schema.rs`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::JournalEntry;
use crate::query::{compare, parse_query};
use crate::schema::{JOURNAL_FIELDS, JOURNAL_TABLE, JOURNAL_TABLE_FIELDS, SYS_FIELDS, def, reference_table};

/// `sysparm_display_value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Stored,
    Display,
    All,
}

impl Mode {
    pub(crate) fn parse(v: Option<&str>) -> Mode {
        match v.map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Mode::Display,
            Some("all") => Mode::All,
            _ => Mode::Stored,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) seq: u64,
    pub(crate) fields: Map<String, Value>,
}

impl Row {
    pub(crate) fn get(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Clone, Debug)]
struct Journal {
    seq: u64,
    sys_id: String,
    table: String,
    element_id: String,
    element: String,
    value: String,
    created_on: String,
    created_by: String,
}

/// Who writes: the user name (for `sys_*_by`) and whether ServiceNow's rules apply (the
/// simulator's control API acts as an administrator fixing data: no refusals, derived fields
/// still follow).
pub(crate) struct Actor<'a> {
    pub(crate) user: &'a str,
    pub(crate) enforce: bool,
}

/// A write ServiceNow refuses: status and its error body's message and detail.
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) detail: String,
}

#[derive(Default)]
pub(crate) struct Db {
    tables: BTreeMap<String, Vec<Row>>,
    journal: Vec<Journal>,
    /// Request item sys_id → its variables (name, value) in order: ServiceNow keeps them apart
    /// from the record (`sc_item_option`), and only an order through the catalog creates them.
    variables: HashMap<String, Vec<(String, String)>>,
    seq: u64,
    counters: HashMap<String, u64>,
}

pub(crate) fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn new_sys_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A JSON value as ServiceNow stores it: text.
fn stored(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => o.get("value").map(stored).unwrap_or_default(),
        Value::Array(a) => a.iter().map(stored).collect::<Vec<_>>().join(","),
    }
}

impl Db {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn rows(&self, table: &str) -> Vec<Row> {
        if table == JOURNAL_TABLE {
            return self.journal.iter().map(journal_row).collect();
        }
        self.tables.get(table).cloned().unwrap_or_default()
    }

    pub(crate) fn row(&self, table: &str, sys_id: &str) -> Option<Row> {
        if table == JOURNAL_TABLE {
            return self.journal.iter().find(|j| j.sys_id == sys_id).map(journal_row);
        }
        self.tables.get(table)?.iter().find(|r| r.get("sys_id") == sys_id).cloned()
    }

    pub(crate) fn delete(&mut self, table: &str, sys_id: &str) -> bool {
        let Some(rows) = self.tables.get_mut(table) else { return false };
        let before = rows.len();
        rows.retain(|r| r.get("sys_id") != sys_id);
        let deleted = rows.len() != before;
        if deleted {
            self.variables.remove(sys_id);
        }
        deleted
    }

    /// Whether any journal entry belongs to the record.
    pub(crate) fn has_journal(&self, sys_id: &str) -> bool {
        self.journal.iter().any(|j| j.element_id == sys_id)
    }

    /// The first record whose `field` is exactly `value`.
    pub(crate) fn find(&self, table: &str, field: &str, value: &str) -> Option<Row> {
        self.tables.get(table)?.iter().find(|r| r.get(field) == value).cloned()
    }

    /// The request item's variables (name, value), in order; `None` when it has none (an item
    /// not ordered through the catalog, or whose catalog item has no variables).
    pub(crate) fn variables(&self, sys_id: &str) -> Option<&[(String, String)]> {
        self.variables.get(sys_id).map(Vec::as_slice)
    }

    pub(crate) fn set_variables(&mut self, sys_id: &str, variables: Vec<(String, String)>) {
        self.variables.insert(sys_id.to_string(), variables);
    }

    /// Sets one variable the item has; `false` when it has no such variable.
    pub(crate) fn set_variable(&mut self, sys_id: &str, name: &str, value: &str) -> bool {
        match self.variables.get_mut(sys_id).and_then(|vs| vs.iter_mut().find(|(n, _)| n == name)) {
            Some(slot) => {
                slot.1 = value.to_string();
                true
            }
            None => false,
        }
    }

    /// The journal entries of one record's field, oldest first.
    pub(crate) fn journal(&self, table: &str, sys_id: &str, element: &str) -> Vec<JournalEntry> {
        self.journal
            .iter()
            .filter(|j| j.table == table && j.element_id == sys_id && j.element == element)
            .map(|j| JournalEntry { at: j.created_on.clone(), author: j.created_by.clone(), text: j.value.clone() })
            .collect()
    }

    /// The user's display name (`sys_user.name`), or the user name.
    fn user_display(&self, user_name: &str) -> String {
        self.tables
            .get("sys_user")
            .and_then(|rows| rows.iter().find(|r| r.get("user_name") == user_name))
            .map(|r| r.get("name").to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user_name.to_string())
    }

    pub(crate) fn user_sys_id(&self, user_name: &str) -> Option<String> {
        self.tables
            .get("sys_user")?
            .iter()
            .find(|r| r.get("user_name") == user_name)
            .map(|r| r.get("sys_id").to_string())
    }

    /// A journal field as ServiceNow displays it: newest entry first.
    pub(crate) fn journal_text(&self, table: &str, sys_id: &str, element: &str) -> String {
        let label = if element == "work_notes" { "Work notes" } else { "Additional comments" };
        let mut out = String::new();
        for j in
            self.journal.iter().rev().filter(|j| j.table == table && j.element_id == sys_id && j.element == element)
        {
            out.push_str(&format!(
                "{} - {} ({label})\n{}\n\n",
                j.created_on,
                self.user_display(&j.created_by),
                j.value
            ));
        }
        out
    }

    /// Whether the table has the field: the platform's, the table's own, or one some record has;
    /// a dot-walked field (`requested_for.email`) when each step is a reference to a table that
    /// has the next.
    pub(crate) fn knows(&self, table: &str, field: &str) -> bool {
        if let Some((head, rest)) = field.split_once('.') {
            return reference_table(head).is_some_and(|rt| self.knows(table, head) && self.knows(rt, rest));
        }
        if table == JOURNAL_TABLE {
            return JOURNAL_TABLE_FIELDS.contains(&field);
        }
        SYS_FIELDS.contains(&field)
            || def(table).is_some_and(|d| d.has(field) || (d.journal && JOURNAL_FIELDS.contains(&field)))
            || self.tables.get(table).is_some_and(|rows| rows.iter().any(|r| r.fields.contains_key(field)))
    }

    /// Where a dot-walked field ends: the table and the record holding its last field (`None`
    /// when a reference on the way is empty or points nowhere) and that field. `None` when the
    /// path names no field.
    pub(crate) fn walk<'p>(
        &self,
        table: &str,
        row: Option<Row>,
        path: &'p str,
    ) -> Option<(String, Option<Row>, &'p str)> {
        match path.split_once('.') {
            None => self.knows(table, path).then(|| (table.to_string(), row, path)),
            Some((head, rest)) => {
                let rt = reference_table(head).filter(|_| self.knows(table, head))?;
                let next = row.and_then(|r| self.row(rt, r.get(head)));
                self.walk(rt, next, rest)
            }
        }
    }

    /// A field's stored value, dot-walking through references (empty when a reference is empty).
    fn path_value(&self, table: &str, row: &Row, path: &str) -> String {
        if !path.contains('.') {
            return row.get(path).to_string();
        }
        match self.walk(table, Some(row.clone()), path) {
            Some((_, Some(r), field)) => r.get(field).to_string(),
            _ => String::new(),
        }
    }

    fn accepts(&self, table: &str, field: &str) -> bool {
        if SYS_FIELDS.contains(&field) {
            return false;
        }
        match def(table) {
            Some(d) => d.has(field) || field.starts_with("u_"),
            None => true,
        }
    }

    /// Inserts a record and answers its sys_id.
    pub(crate) fn insert(
        &mut self,
        table: &str,
        body: &Map<String, Value>,
        actor: &Actor<'_>,
    ) -> Result<String, Refusal> {
        if table == JOURNAL_TABLE {
            return Err(acl_refusal());
        }
        let at = now();
        let requested = body.get("sys_id").map(stored).filter(|s| is_sys_id(s));
        let sys_id = match requested {
            Some(id) if self.row(table, &id).is_none() => id,
            _ => new_sys_id(),
        };
        let mut fields = Map::new();
        let d = def(table);
        if let Some(d) = &d {
            for fs in d.fields {
                for f in *fs {
                    fields.insert((*f).to_string(), Value::String(String::new()));
                }
            }
        }
        let mut defaults: Vec<(&str, String)> = vec![];
        match table {
            "sc_req_item" => {
                defaults.extend([
                    ("state", "1".into()),
                    ("approval", "not requested".into()),
                    ("active", "true".into()),
                ]);
                defaults.push(("quantity", "1".into()));
            }
            "change_request" => defaults.extend([
                ("state", "-5".into()),
                ("approval", "not requested".into()),
                ("active", "true".into()),
                ("type", "normal".into()),
                ("phase", "requested".into()),
            ]),
            "sc_request" => defaults.extend([
                ("state", "1".into()),
                ("approval", "not requested".into()),
                ("active", "true".into()),
                ("request_state", "requested".into()),
            ]),
            "sys_user" | "sc_cat_item" | "item_option_new_set" | "item_option_new" | "sys_user_group" => {
                defaults.push(("active", "true".into()))
            }
            _ => {}
        }
        if d.as_ref().is_some_and(|d| d.is_task()) {
            defaults.push(("opened_at", at.clone()));
            if let Some(u) = self.user_sys_id(actor.user) {
                defaults.push(("opened_by", u));
            }
        }
        if let Some((prefix, first)) = d.as_ref().and_then(|d| d.number) {
            let n = self.counters.entry(table.to_string()).or_insert(first);
            defaults.push(("number", format!("{prefix}{:07}", *n)));
            *n += 1;
        }
        for (k, v) in defaults {
            fields.insert(k.into(), Value::String(v));
        }
        let before = fields.clone();
        let (mut patch, notes) = self.split(table, body);
        self.rules(table, &before, &mut patch, actor, &at)?;
        fields.extend(patch);
        if table == "sys_user" && fields.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
            // `sys_user.name` is calculated from the first and last names.
            let part = |f: &str| fields.get(f).and_then(Value::as_str).unwrap_or("").trim().to_string();
            let name = [part("first_name"), part("last_name")].join(" ").trim().to_string();
            fields.insert("name".into(), Value::String(name));
        }
        for (k, v) in [
            ("sys_id", sys_id.clone()),
            ("sys_created_on", at.clone()),
            ("sys_created_by", actor.user.to_string()),
            ("sys_updated_on", at.clone()),
            ("sys_updated_by", actor.user.to_string()),
            ("sys_mod_count", "0".into()),
            ("sys_class_name", table.to_string()),
        ] {
            fields.insert(k.into(), Value::String(v));
        }
        let seq = self.next_seq();
        self.tables.entry(table.to_string()).or_default().push(Row { seq, fields });
        self.add_notes(table, &sys_id, notes, actor.user, &at);
        Ok(sys_id)
    }

    /// Updates a record; `Ok(false)` when there is no such record.
    pub(crate) fn update(
        &mut self,
        table: &str,
        sys_id: &str,
        body: &Map<String, Value>,
        actor: &Actor<'_>,
    ) -> Result<bool, Refusal> {
        if table == JOURNAL_TABLE {
            return Err(acl_refusal());
        }
        let Some(before) = self.row(table, sys_id) else { return Ok(false) };
        let at = now();
        let (mut patch, notes) = self.split(table, body);
        self.rules(table, &before.fields, &mut patch, actor, &at)?;
        if let Some(row) =
            self.tables.get_mut(table).and_then(|rows| rows.iter_mut().find(|r| r.get("sys_id") == sys_id))
        {
            row.fields.extend(patch);
            let count = row.get("sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
            row.fields.insert("sys_mod_count".into(), Value::String(count.to_string()));
            row.fields.insert("sys_updated_on".into(), Value::String(at.clone()));
            row.fields.insert("sys_updated_by".into(), Value::String(actor.user.to_string()));
        }
        self.add_notes(table, sys_id, notes, actor.user, &at);
        Ok(true)
    }

    /// The body's storable fields (as text) and its journal entries (element, text).
    fn split(&self, table: &str, body: &Map<String, Value>) -> (Map<String, Value>, Vec<(String, String)>) {
        let mut patch = Map::new();
        let mut notes = Vec::new();
        for (k, v) in body {
            if JOURNAL_FIELDS.contains(&k.as_str()) {
                let text = stored(v);
                if !text.trim().is_empty() {
                    notes.push((k.clone(), text));
                }
            } else if self.accepts(table, k) {
                patch.insert(k.clone(), Value::String(stored(v)));
            }
        }
        (patch, notes)
    }

    fn add_notes(&mut self, table: &str, sys_id: &str, notes: Vec<(String, String)>, user: &str, at: &str) {
        for (element, value) in notes {
            let seq = self.next_seq();
            self.journal.push(Journal {
                seq,
                sys_id: new_sys_id(),
                table: table.to_string(),
                element_id: sys_id.to_string(),
                element,
                value,
                created_on: at.to_string(),
                created_by: user.to_string(),
            });
        }
    }

    /// Business rules. Change requests follow ServiceNow's change state model (see
    /// [`change_move`]); entering Assess (-4) or Authorize (-3) requests approval, Closed and
    /// Canceled end `active`. Request items: the closed states end `active`.
    fn rules(
        &self,
        table: &str,
        before: &Map<String, Value>,
        patch: &mut Map<String, Value>,
        actor: &Actor<'_>,
        at: &str,
    ) -> Result<(), Refusal> {
        let get = |m: &Map<String, Value>, f: &str| m.get(f).and_then(Value::as_str).unwrap_or("").to_string();
        let old_state = get(before, "state");
        let new_state = patch.get("state").and_then(Value::as_str).map(str::to_string);
        let Some(new_state) = new_state.filter(|s| *s != old_state) else { return Ok(()) };
        let merged = |patch: &Map<String, Value>, f: &str| {
            patch.get(f).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| get(before, f))
        };
        let closed = match table {
            "change_request" => {
                if actor.enforce {
                    let kind = merged(patch, "type");
                    change_move(&kind, &old_state, &new_state).map_err(|why| state_refusal(&why))?;
                    if new_state == "3"
                        && (merged(patch, "close_code").trim().is_empty()
                            || merged(patch, "close_notes").trim().is_empty())
                    {
                        return Err(state_refusal("Close code and close notes are mandatory to close a change."));
                    }
                }
                // Entering an approval state asks for approval (again, after a rejection sent the
                // change back to New), unless the write sets `approval` itself.
                let asks = new_state == "-4" || (new_state == "-3" && merged(patch, "approval") == "not requested");
                if asks && !patch.contains_key("approval") {
                    patch.insert("approval".into(), Value::String("requested".into()));
                }
                new_state == "3" || new_state == "4"
            }
            "sc_req_item" => matches!(new_state.as_str(), "3" | "4" | "7"),
            _ => false,
        };
        if closed {
            patch.insert("active".into(), Value::String("false".into()));
            if merged(patch, "closed_at").is_empty() {
                patch.insert("closed_at".into(), Value::String(at.to_string()));
            }
        }
        Ok(())
    }

    /// The change's current approval step, as its approvers act on it (`/_sim/changes/{sys_id}/
    /// approve|reject`): in Assess (-4) the Assess group's approval moves it to Authorize (-3),
    /// where the CAB's approval is asked; in Authorize the CAB's approval moves it to Scheduled
    /// (-2) with approval "approved". A rejection at either step sets approval "rejected" and
    /// sends the change back to New (-5): "If a Normal or Emergency change request is rejected,
    /// the state of the change request is set to New"
    /// (https://www.servicenow.com/docs/r/yokohama/it-service-management/change-management/c_ChangeStateModel.html).
    /// Each step is also recorded as a `sysapproval_group` row (`parent`, `assignment_group`,
    /// `approval`). Answers the change's new state; a refusal when no approval step is pending.
    pub(crate) fn decide_change(&mut self, sys_id: &str, approve: bool, user: &str) -> Result<Option<String>, Refusal> {
        let Some(row) = self.row("change_request", sys_id) else { return Ok(None) };
        let state = row.get("state").to_string();
        let pending = |why: &str| Refusal {
            status: 409,
            message: "No approval pending".into(),
            detail: format!("change {} is in state {state}: {why}", row.get("number")),
        };
        if row.get("approval") != "requested" || (state != "-4" && state != "-3") {
            return Err(pending(
                "only a change in Assess or Authorize with approval requested can be approved or rejected",
            ));
        }
        let admin = Actor { user, enforce: false };
        let verdict = if approve { "approved" } else { "rejected" };
        let step_group = if state == "-4" { self.assess_group(&row) } else { self.group_named(CAB_GROUP) };
        self.record_group_approval(sys_id, step_group.as_deref(), verdict, &admin);
        let mut m = Map::new();
        let next = match (approve, state.as_str()) {
            (true, "-4") => "-3",
            (true, _) => {
                m.insert("approval".into(), Value::String("approved".into()));
                "-2"
            }
            (false, _) => {
                m.insert("approval".into(), Value::String("rejected".into()));
                "-5"
            }
        };
        m.insert("state".into(), Value::String(next.into()));
        self.update("change_request", sys_id, &m, &admin)?;
        if approve && next == "-3" {
            let cab = self.group_named(CAB_GROUP);
            self.record_group_approval(sys_id, cab.as_deref(), "requested", &admin);
        }
        Ok(Some(next.to_string()))
    }

    /// The group that assesses the change: its assignment group, else "Change Management".
    fn assess_group(&self, change: &Row) -> Option<String> {
        Some(change.get("assignment_group").to_string())
            .filter(|g| !g.is_empty())
            .or_else(|| self.group_named(CHANGE_MANAGEMENT_GROUP))
    }

    fn group_named(&self, name: &str) -> Option<String> {
        self.find("sys_user_group", "name", name).map(|r| r.get("sys_id").to_string())
    }

    /// Sets the change's group approval for `group` to `approval` (adding the row if needed).
    fn record_group_approval(&mut self, change: &str, group: Option<&str>, approval: &str, actor: &Actor<'_>) {
        let group = group.unwrap_or("");
        let existing = self
            .rows("sysapproval_group")
            .into_iter()
            .find(|r| r.get("parent") == change && r.get("assignment_group") == group)
            .map(|r| r.get("sys_id").to_string());
        let mut m = Map::new();
        m.insert("approval".into(), Value::String(approval.into()));
        let _ = match existing {
            Some(id) => self.update("sysapproval_group", &id, &m, actor).map(|_| ()),
            None => {
                m.insert("parent".into(), Value::String(change.into()));
                m.insert("assignment_group".into(), Value::String(group.into()));
                self.insert("sysapproval_group", &m, actor).map(|_| ())
            }
        };
    }

    /// The records an encoded query selects, in its order.
    pub(crate) fn select(&self, table: &str, query: &str) -> Vec<Row> {
        let mut rows = self.rows(table);
        let q = parse_query(query, |f| self.knows(table, f));
        rows.retain(|r| q.conds.iter().all(|c| c.matches(&|f| self.path_value(table, r, f))));
        if !q.order.is_empty() {
            let newest_first = q.order[0].1;
            rows.sort_by(|a, b| {
                for (field, desc) in &q.order {
                    let o = compare(&self.path_value(table, a, field), &self.path_value(table, b, field));
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                if newest_first { b.seq.cmp(&a.seq) } else { a.seq.cmp(&b.seq) }
            });
        }
        rows
    }
}

/// The group that authorizes changes (the CAB) and the default Assess group, seeded by name.
pub(crate) const CAB_GROUP: &str = "CAB Approval";
pub(crate) const CHANGE_MANAGEMENT_GROUP: &str = "Change Management";

/// Whether a write may move a change from `from` to `to`, by the change's `type`.
///
/// ServiceNow's documented state progression
/// (https://www.servicenow.com/docs/r/yokohama/it-service-management/change-management/c_ChangeStateModel.html,
/// https://www.servicenow.com/docs/r/australia/it-service-management/change-management/normal-standard-emergency-states.html):
/// a normal change goes New (-5) → Assess (-4) → Authorize (-3) → Scheduled (-2) → Implement (-1)
/// → Review (0) → Closed (3); a standard change skips Assess and Authorize (New → Scheduled); an
/// emergency change skips Assess (New → Authorize). Assess → Authorize and Authorize → Scheduled
/// are the approvers' moves (the change's approvals, not a field write), so the Table API may not
/// make them. "Revert to New" takes a normal change from Assess (an emergency one from Authorize)
/// back to New. A change can be canceled from any open state except Review ("You cannot cancel
/// the change request if it is in the Review state"), and never once closed.
pub(crate) fn change_move(kind: &str, from: &str, to: &str) -> Result<(), String> {
    let label = |s: &str| crate::schema::choice_label("change_request", "state", s).unwrap_or("an unknown state");
    let open = matches!(from, "-5" | "-4" | "-3" | "-2" | "-1" | "0");
    let allowed = match (from, to) {
        (_, "4") => open && from != "0",
        ("-5", "-4") => kind != "standard" && kind != "emergency",
        ("-5", "-3") => kind == "emergency",
        ("-5", "-2") => kind == "standard",
        ("-4", "-5") => kind != "standard" && kind != "emergency",
        ("-3", "-5") => kind == "emergency",
        ("-2", "-1") | ("-1", "0") | ("0", "3") => true,
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let why = match (from, to) {
        ("-4", "-3") | ("-3", "-2") => " The change moves on when its approvers approve it.".to_string(),
        ("0", "4") => " A change in Review can no longer be canceled.".to_string(),
        _ => String::new(),
    };
    Err(format!(
        "Invalid state transition from {} ({from}) to {} ({to}) for a {} change.{why}",
        label(from),
        label(to),
        if kind.is_empty() { "normal" } else { kind }
    ))
}

/// ServiceNow's answer to a write its state model refuses: 403 "Operation Failed" from the
/// business rule that checks the move.
fn state_refusal(why: &str) -> Refusal {
    Refusal {
        status: 403,
        message: "Operation Failed".into(),
        detail: format!(
            "Operation against file 'change_request' was aborted by Business Rule 'State model - can change state?'. {why}"
        ),
    }
}

fn acl_refusal() -> Refusal {
    Refusal {
        status: 403,
        message: "Operation Failed".into(),
        detail: "ACL Exception Insert Failed due to security constraints".into(),
    }
}

fn journal_row(j: &Journal) -> Row {
    let mut fields = Map::new();
    for (k, v) in [
        ("sys_id", &j.sys_id),
        ("element_id", &j.element_id),
        ("element", &j.element),
        ("name", &j.table),
        ("value", &j.value),
        ("sys_created_on", &j.created_on),
        ("sys_created_by", &j.created_by),
        ("sys_updated_on", &j.created_on),
    ] {
        fields.insert(k.into(), Value::String(v.clone()));
    }
    Row { seq: j.seq, fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db_with(values: &[(&str, &str)]) -> (Db, Vec<String>) {
        let mut db = Db::default();
        let actor = Actor { user: "t", enforce: true };
        let ids = values
            .iter()
            .map(|(cid, desc)| {
                let mut m = Map::new();
                m.insert("correlation_id".into(), json!(cid));
                m.insert("short_description".into(), json!(desc));
                db.insert("change_request", &m, &actor).ok().unwrap()
            })
            .collect();
        (db, ids)
    }

    #[test]
    fn queries_drop_what_they_do_not_understand() {
        let (db, ids) = db_with(&[("a", "one"), ("b", "two"), ("A", "three")]);
        let n = |q: &str| db.select("change_request", q).len();
        assert_eq!(n("correlation_id=a"), 2, "= ignores case");
        assert_eq!(n("correlation_id!=a"), 1);
        assert_eq!(n("correlation_idINa,b"), 3);
        assert_eq!(n("no_such_field=x"), 3, "unknown field: dropped");
        assert_eq!(n("correlation_idENDSWITHa"), 3, "unknown operator: dropped");
        assert_eq!(n("short_descriptionLIKEO"), 2, "LIKE: contains, ignoring case");
        assert_eq!(n("short_description>three"), 1, "compared as text");
        assert_eq!(n("short_description>=three^short_description<two"), 1);
        assert_eq!(n("short_description<=one"), 1);
        assert_eq!(n("correlation_id=b^ORcorrelation_id=a"), 1, "^OR: dropped");
        assert_eq!(n("active=true^state=-5"), 3);
        let order: Vec<String> =
            db.select("change_request", "ORDERBYDESCnumber").iter().map(|r| r.get("sys_id").to_string()).collect();
        assert_eq!(order, ids.iter().rev().cloned().collect::<Vec<_>>());
        let newest = db.select("change_request", "ORDERBYDESCsys_created_on");
        assert_eq!(newest[0].get("sys_id"), ids[2], "same second: newest first");
    }

    #[test]
    fn change_state_model() {
        let (mut db, ids) = db_with(&[("a", "one")]);
        let id = &ids[0];
        let actor = Actor { user: "t", enforce: true };
        let set = |db: &mut Db, kv: Value| {
            let Value::Object(m) = kv else { unreachable!() };
            db.update("change_request", id, &m, &actor).map_err(|r| r.detail)
        };
        assert!(set(&mut db, json!({"state": "-1"})).is_err());
        assert!(set(&mut db, json!({"state": "-3"})).unwrap_err().contains("New (-5) to Authorize (-3)"));
        set(&mut db, json!({"state": "-4"})).unwrap();
        assert_eq!(db.row("change_request", id).unwrap().get("approval"), "requested");
        assert!(set(&mut db, json!({"state": "-3"})).unwrap_err().contains("approvers"));
        assert_eq!(db.decide_change(id, true, "t").ok().flatten().as_deref(), Some("-3"));
        assert_eq!(db.decide_change(id, true, "t").ok().flatten().as_deref(), Some("-2"));
        assert_eq!(db.row("change_request", id).unwrap().get("approval"), "approved");
        assert!(set(&mut db, json!({"state": "0"})).is_err());
        set(&mut db, json!({"state": "-1"})).unwrap();
        set(&mut db, json!({"state": "0"})).unwrap();
        assert!(set(&mut db, json!({"state": "4"})).unwrap_err().contains("Review"));
        assert!(set(&mut db, json!({"state": "3", "close_code": "successful"})).unwrap_err().contains("mandatory"));
        set(&mut db, json!({"state": "3", "close_code": "successful", "close_notes": "ok"})).unwrap();
        let row = db.row("change_request", id).unwrap();
        assert_eq!(row.get("active"), "false");
        assert_eq!(row.get("sys_mod_count"), "6");
    }
}
