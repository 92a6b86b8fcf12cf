//! The change answer of `/v1/changes` (DESIGN.md, "HTTP API") and the line each decision prints.

use serde::Deserialize;

use super::exit::{EXIT_BLOCKED, EXIT_PROCEED, EXIT_TIMED_OUT, Fail};
use super::text::{clip, one_line, or_unknown};

/// The change answer. Lenient: only `decision` must be understood; a field missing or `null` is
/// empty.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(super) struct Change {
    #[serde(deserialize_with = "nullable")]
    number: String,
    #[serde(deserialize_with = "nullable")]
    url: String,
    #[serde(deserialize_with = "nullable")]
    approval: String,
    #[serde(deserialize_with = "nullable")]
    pub(super) state: ChangeState,
    #[serde(deserialize_with = "nullable")]
    decision: String,
    #[serde(deserialize_with = "nullable")]
    reason: String,
    window: Option<Window>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(super) struct ChangeState {
    #[serde(deserialize_with = "nullable")]
    pub(super) display: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Window {
    #[serde(deserialize_with = "nullable")]
    open: bool,
    next_open_at: Option<String>,
    rule: Option<String>,
}

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    Proceed,
    Wait,
    Blocked,
}

impl Change {
    pub(super) fn decision(&self) -> Result<Decision, Fail> {
        match self.decision.as_str() {
            "proceed" => Ok(Decision::Proceed),
            "wait" => Ok(Decision::Wait),
            "blocked" => Ok(Decision::Blocked),
            other => Err(Fail(format!(
                "Gatehouse answered a decision this client does not know (\"{}\"); is gatehouse ci up to date?",
                clip(other, 40)
            ))),
        }
    }

    pub(super) fn number(&self) -> String {
        let number = one_line(&self.number);
        if number.is_empty() { "change".to_string() } else { number }
    }

    pub(super) fn link(&self) -> String {
        let url = one_line(&self.url);
        if url.is_empty() { String::new() } else { format!(" — {url}") }
    }

    /// Why it waits, with the window's next opening when the window is closed.
    pub(super) fn wait_text(&self) -> String {
        let mut text = one_line(&self.reason);
        if text.is_empty() {
            text = format!("approval {}, state {}", or_unknown(&self.approval), or_unknown(&self.state.display));
        }
        if let Some(window) = self.window.as_ref().filter(|w| !w.open) {
            match (window.next_open_at.as_deref().map(one_line).filter(|s| !s.is_empty()), window.rule.as_deref()) {
                (Some(next), _) => text.push_str(&format!("; window opens {next}")),
                (None, Some(rule)) if !rule.trim().is_empty() => {
                    text.push_str(&format!("; window closed ({})", one_line(rule)))
                }
                _ => text.push_str("; window closed"),
            }
        }
        text
    }

    pub(super) fn blocked_text(&self) -> String {
        let reason = one_line(&self.reason);
        if reason.is_empty() { format!("state {}", or_unknown(&self.state.display)) } else { reason }
    }

    /// The one line `verify` prints for this answer, and its exit code.
    pub(super) fn verdict(&self) -> Result<(String, u8), Fail> {
        let (n, link) = (self.number(), self.link());
        Ok(match self.decision()? {
            Decision::Proceed => (format!("{n} approved and the window is open: proceed{link}"), EXIT_PROCEED),
            Decision::Wait => (format!("{n} waiting: {}{link}", self.wait_text()), EXIT_TIMED_OUT),
            Decision::Blocked => (format!("{n} blocked: {}{link}", self.blocked_text()), EXIT_BLOCKED),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(decision: &str, reason: &str, window: Option<Window>) -> Change {
        Change {
            number: "CHG0030001".into(),
            url: "https://instance.service-now.com/change_request.do?sys_id=1".into(),
            approval: "requested".into(),
            state: ChangeState { display: "Authorize".into() },
            decision: decision.into(),
            reason: reason.into(),
            window,
        }
    }

    #[test]
    fn each_decision_is_one_line_with_number_and_url() {
        let url = "https://instance.service-now.com/change_request.do?sys_id=1";
        let wait = change(
            "wait",
            "waiting for approval (state Authorize)",
            Some(Window { open: false, next_open_at: Some("2026-12-01T19:00:00+01:00".into()), rule: None }),
        );
        assert_eq!(
            wait.verdict().unwrap(),
            (
                format!(
                    "CHG0030001 waiting: waiting for approval (state Authorize); window opens 2026-12-01T19:00:00+01:00 — {url}"
                ),
                EXIT_TIMED_OUT
            )
        );
        let proceed = change("proceed", "approved", Some(Window { open: true, ..Default::default() }));
        assert_eq!(
            proceed.verdict().unwrap(),
            (format!("CHG0030001 approved and the window is open: proceed — {url}"), EXIT_PROCEED)
        );
        let blocked = change("blocked", "rejected by the change manager\r\n", None);
        assert_eq!(
            blocked.verdict().unwrap(),
            (format!("CHG0030001 blocked: rejected by the change manager — {url}"), EXIT_BLOCKED)
        );
        assert!(change("maybe", "", None).verdict().is_err());
    }

    #[test]
    fn a_change_answer_with_nulls_and_unknown_fields_still_reads() {
        let change: Change = serde_json::from_str(
            r#"{"number":"CHG1","url":null,"approval":null,"state":{"value":"-3","display":null},
                "decision":"wait","reason":null,"window":{"open":null,"next_open_at":null,"rule":null},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            change.verdict().unwrap(),
            ("CHG1 waiting: approval unknown, state unknown; window closed".into(), 2)
        );
    }
}
