//! The business rules of ServiceNow's change state model: which moves a write may make, what
//! entering a state sets (approval requested, `active` ended), and the approvers' steps
//! (`decide_change`), each recorded as a `sysapproval_group` row.

use serde_json::{Map, Value};

use super::{Actor, Db, Refusal, Row};

impl Db {
    /// Business rules. Change requests follow ServiceNow's change state model (see
    /// [`change_move`]); entering Assess (-4) or Authorize (-3) requests approval, Closed and
    /// Canceled end `active`. Request items: the closed states end `active`.
    pub(super) fn rules(
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
