//! The mails Gatehouse owes, as data. Rendering lives in shared/mail (one place for templates).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum MailTemplate {
    /// To an approver: the request and its Approve / Deny links. Only the link's id is stored; its
    /// token is derived with the link key when the mail is rendered (`LinkKey::token_for`).
    ApprovalRequest {
        link_id: String,
        #[serde(default, flatten)]
        ask: LinkAsk,
    },
    /// Reminder at half time, with a fresh link.
    ApprovalReminder {
        link_id: String,
        #[serde(default, flatten)]
        ask: LinkAsk,
    },
    Received,
    Approved,
    Denied,
    Cancelled,
    Expired,
    Active,
    Failed,
    /// To the approver who approved: provisioning failed.
    FailedApprover,
    /// To the requester before the lease ends: when the servers go, with an Extend link (its
    /// token derived like an approval link's, see `LinkKey::token_for`).
    LeaseReminder {
        link_id: String,
    },
    /// To the requester: the lease ended and the servers were deleted.
    Retired,
}

impl MailTemplate {
    /// The template's name, as its JSON `template` tag says it (`approval_request`, …).
    pub fn name(&self) -> &'static str {
        match self {
            MailTemplate::ApprovalRequest { .. } => "approval_request",
            MailTemplate::ApprovalReminder { .. } => "approval_reminder",
            MailTemplate::Received => "received",
            MailTemplate::Approved => "approved",
            MailTemplate::Denied => "denied",
            MailTemplate::Cancelled => "cancelled",
            MailTemplate::Expired => "expired",
            MailTemplate::Active => "active",
            MailTemplate::Failed => "failed",
            MailTemplate::FailedApprover => "failed_approver",
            MailTemplate::LeaseReminder { .. } => "lease_reminder",
            MailTemplate::Retired => "retired",
        }
    }
}

/// What an approval link asks of its holder: the stage (0-based) they approve for, the approver
/// a delegate decides for, and whether they were asked because the stage was escalated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAsk {
    #[serde(default)]
    pub stage: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escalated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailNotice {
    pub to: String,
    #[serde(flatten)]
    pub template: MailTemplate,
}

/// A single mailbox address with nothing that could break a header: no CR/LF, no commas, angle
/// brackets, quotes or spaces, exactly one `@` with a dotted domain.
pub fn check_email(field: &str, value: &str) -> Result<()> {
    let bad = |m: &str| Err(Error::invalid(field, m));
    if value.is_empty() {
        return bad("must not be empty");
    }
    if value.len() > 254 {
        return bad("is longer than 254 characters");
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace() || "<>()[],;:\"\\".contains(c)) {
        return bad("must be a single e-mail address without spaces, quotes, brackets, commas or line breaks");
    }
    let Some((local, domain)) = value.split_once('@') else {
        return bad("must be an e-mail address like name@example.com");
    };
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return bad("must be an e-mail address like name@example.com");
    }
    Ok(())
}

/// A display name or other text that goes into a header: one line, no control characters.
pub fn check_header_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(field, "must not contain line breaks or control characters"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_name_is_its_json_tag() {
        let link = || "abc".to_string();
        for template in [
            MailTemplate::ApprovalRequest { link_id: link(), ask: LinkAsk::default() },
            MailTemplate::ApprovalReminder { link_id: link(), ask: LinkAsk::default() },
            MailTemplate::Received,
            MailTemplate::Approved,
            MailTemplate::Denied,
            MailTemplate::Cancelled,
            MailTemplate::Expired,
            MailTemplate::Active,
            MailTemplate::Failed,
            MailTemplate::FailedApprover,
            MailTemplate::LeaseReminder { link_id: link() },
            MailTemplate::Retired,
        ] {
            assert_eq!(serde_json::to_value(&template).unwrap()["template"], template.name());
        }
    }

    #[test]
    fn approval_mails_stored_before_stages_still_read() {
        let old: MailNotice =
            serde_json::from_str(r#"{"to":"ops@example.com","template":"approval_request","link_id":"abc"}"#).unwrap();
        assert_eq!(old.template, MailTemplate::ApprovalRequest { link_id: "abc".into(), ask: LinkAsk::default() });
        let staged = MailNotice {
            to: "ops3@example.com".into(),
            template: MailTemplate::ApprovalReminder {
                link_id: "x".into(),
                ask: LinkAsk { stage: 1, on_behalf_of: Some("ops1@example.com".into()), escalated: true },
            },
        };
        let back: MailNotice = serde_json::from_str(&serde_json::to_string(&staged).unwrap()).unwrap();
        assert_eq!(back, staged);
    }

    #[test]
    fn single_plain_addresses_pass() {
        assert!(check_email("e", "ada@example.com").is_ok());
        assert!(check_email("e", "a.b+tag@sub.example.co.uk").is_ok());
    }

    #[test]
    fn header_breaking_addresses_fail() {
        for bad in [
            "",
            "ada",
            "ada@example",
            "ada@example.com\r\nBcc: x@evil.com",
            "ada@example.com, eve@evil.com",
            "Ada <ada@example.com>",
            "a@b@c.com",
            "ada @example.com",
            "\"a\"@example.com",
        ] {
            assert!(check_email("requester.email", bad).is_err(), "{bad:?}");
        }
    }
}
