//! Every mail Gatehouse sends: subject, plain text and HTML, from the notice and the request.
//! Every user-supplied field is escaped in HTML; header-bound fields were checked at intake.

use domain::mail::{LinkAsk, MailTemplate};
use domain::model::Request;
use domain::token::LinkKey;
use html_escape::encode_safe as esc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The request's fields as label/value rows, shared by the text and HTML parts.
fn details(r: &Request) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Request", format!("{} ({})", r.source.number, r.id)),
        ("Requester", format!("{} <{}>", r.requester.name, r.requester.email)),
        ("Cloud", r.cloud.clone()),
        ("Image", r.image.name.clone()),
        ("Flavor", r.flavor.name.clone()),
        ("Network", r.network.name.clone()),
        ("Server name", r.planned_names().join(", ")),
        ("Count", r.count.to_string()),
    ];
    if let Some(j) = &r.justification {
        rows.push(("Justification", j.clone()));
    }
    for (k, v) in &r.metadata {
        let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        rows.push(("Metadata", format!("{k}: {v}")));
    }
    rows
}

fn servers(r: &Request) -> Vec<(&'static str, String)> {
    r.servers
        .iter()
        .map(|s| {
            let addrs = if s.addresses.is_empty() { "no address yet".to_string() } else { s.addresses.join(", ") };
            ("Server", format!("{} (id {}): {}", s.name, s.id, addrs))
        })
        .collect()
}

struct Mail {
    subject: String,
    intro: Vec<String>,
    rows: Vec<(&'static str, String)>,
    actions: Vec<(&'static str, String)>,
    outro: Vec<String>,
}

fn text_of(m: &Mail) -> String {
    let mut out = String::new();
    for p in &m.intro {
        out.push_str(p);
        out.push_str("\n\n");
    }
    for (k, v) in &m.rows {
        out.push_str(&format!("{k}: {v}\n"));
    }
    if !m.actions.is_empty() {
        out.push('\n');
        for (label, url) in &m.actions {
            out.push_str(&format!("{label}: {url}\n"));
        }
    }
    for p in &m.outro {
        out.push('\n');
        out.push_str(p);
        out.push('\n');
    }
    out
}

fn html_of(m: &Mail) -> String {
    let mut out = String::from(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1f2933;max-width:640px\">",
    );
    for p in &m.intro {
        out.push_str(&format!("<p>{}</p>", esc(p)));
    }
    out.push_str("<table style=\"border-collapse:collapse\">");
    for (k, v) in &m.rows {
        out.push_str(&format!(
            "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(v)
        ));
    }
    out.push_str("</table>");
    if !m.actions.is_empty() {
        out.push_str("<p>");
        for (label, url) in &m.actions {
            out.push_str(&format!(
                "<a href=\"{}\" style=\"display:inline-block;margin-right:12px;padding:8px 16px;border:1px solid #52606d;border-radius:4px;text-decoration:none\">{}</a>",
                esc(url),
                esc(label)
            ));
        }
        out.push_str("</p>");
    }
    for p in &m.outro {
        out.push_str(&format!("<p style=\"color:#616e7c\">{}</p>", esc(p)));
    }
    out.push_str("</body></html>");
    out
}

fn approval_links(base_url: &str, token: &str) -> Vec<(&'static str, String)> {
    let page = format!("{base_url}/v1/approvals/{token}");
    vec![("Approve", format!("{page}?decision=approve")), ("Deny", format!("{page}?decision=deny"))]
}

fn comment_line(r: &Request) -> Vec<String> {
    let proof = r.decision_proof.iter().map(|p| format!("How they proved who they are: {p}."));
    proof.chain(r.decision_comment.iter().filter(|c| !c.trim().is_empty()).map(|c| format!("Comment: {c}"))).collect()
}

/// Who approved, as the requester reads it: the policy's rule, every stage's approvers, or the
/// one approver.
fn approved_by(r: &Request, by: &str) -> String {
    let Some(approval) = &r.approval else { return by.to_string() };
    if approval.auto_approved {
        return format!("the approval policy (rule {}) without an approver", approval.rule);
    }
    if !approval.is_staged() {
        return by.to_string();
    }
    approval
        .stages
        .iter()
        .map(|s| {
            let people: Vec<String> = s.approved_by.iter().map(|a| a.describe()).collect();
            format!("{} ({})", people.join(" and "), s.group)
        })
        .collect::<Vec<_>>()
        .join(", then ")
}

/// For a staged request: which stage the link is for and how far it got.
fn stage_rows(r: &Request, ask: &LinkAsk) -> Vec<(&'static str, String)> {
    let Some(approval) = &r.approval else { return vec![] };
    let index = ask.stage as usize;
    let Some(stage) = approval.stages.get(index) else { return vec![] };
    if !approval.is_staged() {
        return vec![];
    }
    let mut rows = vec![("Approval stage", approval.describe(index)), ("Rule", approval.rule.clone())];
    if !stage.approved_by.is_empty() {
        let people: Vec<&str> = stage.approved_by.iter().map(|a| a.approver.as_str()).collect();
        rows.push(("Approved so far", people.join(", ")));
    }
    rows
}

/// What the holder is asked as: a delegate for someone, or an escalation.
fn ask_lines(r: &Request, ask: &LinkAsk) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(approval) = &r.approval
        && approval.is_staged()
    {
        lines.push(format!("You are asked for {} of rule {}.", approval.describe(ask.stage as usize), approval.rule));
    }
    if let Some(member) = &ask.on_behalf_of {
        lines.push(format!("You are asked as the delegate of {member}, who is away: your decision counts for them."));
    }
    if ask.escalated {
        lines.push("This stage has waited longer than the approval policy allows, so you are asked as well.".into());
    }
    lines
}

pub fn render(template: &MailTemplate, r: &Request, base_url: &str, links: &LinkKey) -> RenderedMail {
    let number = &r.source.number;
    let by = r.decided_by.clone().unwrap_or_else(|| "the approver".into());
    let page_note =
        "Each link opens a confirmation page; nothing is decided until you press the button there.".to_string();
    let m = match template {
        MailTemplate::ApprovalRequest { link_id, ask } | MailTemplate::ApprovalReminder { link_id, ask } => {
            let reminder = matches!(template, MailTemplate::ApprovalReminder { .. });
            let mut rows = details(r);
            rows.extend(stage_rows(r, ask));
            Mail {
                subject: format!(
                    "{}Approval needed: {number} — {} × {} on {} for {}",
                    if reminder { "Reminder: " } else { "" },
                    r.count,
                    r.flavor.name,
                    r.cloud,
                    r.requester.name
                ),
                intro: [
                    vec![format!(
                        "{} asks for {} VM{} on {}. Please approve or deny.",
                        r.requester.name,
                        r.count,
                        if r.count == 1 { "" } else { "s" },
                        r.cloud
                    )],
                    ask_lines(r, ask),
                ]
                .concat(),
                rows,
                actions: approval_links(base_url, links.token_for(link_id).expose()),
                outro: vec![page_note, format!("These links expire at {}.", when(r.expires_at))],
            }
        }
        MailTemplate::Received => Mail {
            subject: format!("Received: {number} waits for approval"),
            intro: vec![format!(
                "Your request {number} reached Gatehouse and waits for a platform approver until {}.",
                when(r.expires_at)
            )],
            rows: details(r),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Approved => Mail {
            subject: format!("Approved: {number}"),
            intro: [
                vec![format!(
                    "Your request {number} was approved by {}. The VMs are being created.",
                    approved_by(r, &by)
                )],
                comment_line(r),
            ]
            .concat(),
            rows: details(r),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Denied => Mail {
            subject: format!("Denied: {number}"),
            intro: [vec![format!("Your request {number} was denied by {by}.")], comment_line(r)].concat(),
            rows: details(r),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Cancelled => Mail {
            subject: format!("Cancelled: {number}"),
            intro: vec![format!("Your request {number} was cancelled; its approval links no longer work.")],
            rows: details(r),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Expired => Mail {
            subject: format!("Expired: {number} was not approved in time"),
            intro: vec![format!(
                "Nobody approved your request {number} before {}. It has expired; order again if you still need it.",
                when(r.expires_at)
            )],
            rows: details(r),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Active => Mail {
            subject: format!("Ready: {number} — {} running", r.planned_names().join(", ")),
            intro: vec![format!("Your VMs for {number} are running on {}.", r.cloud)],
            rows: [servers(r), details(r)].concat(),
            actions: vec![],
            outro: vec![],
        },
        MailTemplate::Failed | MailTemplate::FailedApprover => Mail {
            subject: format!("Failed: {number} could not be provisioned"),
            intro: vec![format!(
                "Creating the VMs for {number} failed: {}",
                r.error.clone().unwrap_or_else(|| "no reason was recorded".into())
            )],
            rows: [servers(r), details(r)].concat(),
            actions: vec![],
            outro: vec!["The platform team has been told.".into()],
        },
        MailTemplate::LeaseReminder { link_id } => {
            let retire_at = r.retirement.as_ref().map(|l| when(l.retire_at)).unwrap_or_else(|| "soon".into());
            Mail {
                subject: format!(
                    "Reminder: {number} — {} will be deleted at {retire_at}",
                    r.planned_names().join(", ")
                ),
                intro: vec![format!(
                    "The lease of your VMs for {number} on {} ends at {retire_at}; then they are deleted. \
                     If you still need them, extend the lease.",
                    r.cloud
                )],
                rows: [servers(r), details(r)].concat(),
                actions: vec![("Extend", format!("{base_url}/v1/leases/{}", links.token_for(link_id).expose()))],
                outro: vec!["The link opens a page; nothing changes until you press the button there.".into()],
            }
        }
        MailTemplate::Retired => Mail {
            subject: format!("Retired: {number} — {} deleted", r.planned_names().join(", ")),
            intro: vec![format!("The lease of your VMs for {number} on {} ended; they were deleted.", r.cloud)],
            rows: [servers(r), details(r)].concat(),
            actions: vec![],
            outro: vec![],
        },
    };
    RenderedMail { text: text_of(&m), html: html_of(&m), subject: m.subject }
}
