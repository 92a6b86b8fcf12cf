//! The approval pages. Every value shown is escaped; nothing is loaded from elsewhere (the CSP
//! allows no scripts, images or fonts).

use axum::response::Html;
use domain::model::Status;
use domain::usecases::approval::{Decision, LinkState, LinkView};
use html_escape::encode_safe as esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:720px;margin:2rem auto;padding:0 1rem;color:#1f2933}
table{border-collapse:collapse;margin:1rem 0}th{text-align:left;padding:4px 16px 4px 0;vertical-align:top;color:#52606d}
.note{padding:.75rem 1rem;border-radius:4px;background:#f0f4f8;margin:1rem 0}.warn{background:#fff3c4}
button{font-size:1rem;padding:.6rem 1.4rem;margin-right:.75rem;border-radius:4px;border:1px solid #52606d;background:#fff;cursor:pointer}
button.pre{border-width:3px}button.approve{background:#e3f9e5}button.deny{background:#ffe3e3}
textarea{width:100%;min-height:4rem;font:inherit}";

pub(crate) fn shell(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    ))
}

pub fn message(title: &str, detail: &str) -> Html<String> {
    shell(title, &format!("<h1>{}</h1><p>{}</p>", esc(title), esc(detail)))
}

fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn details(view: &LinkView) -> String {
    let r = &view.request;
    let mut rows = vec![
        ("Request", r.source.number.clone()),
        ("Requester", format!("{} <{}>", r.requester.name, r.requester.email)),
        ("Cloud", r.cloud.clone()),
        ("Image", r.image.name.clone()),
        ("Flavor", r.flavor.name.clone()),
        ("Network", r.network.name.clone()),
        ("Server names", r.planned_names().join(", ")),
        ("Count", r.count.to_string()),
        ("Justification", r.justification.clone().unwrap_or_default()),
        ("Link expires", when(r.expires_at)),
    ];
    for (k, v) in &r.metadata {
        rows.push(("Metadata", format!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))));
    }
    let mut out = String::from("<table>");
    for (k, v) in rows {
        out.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v)));
    }
    out.push_str("</table>");
    out
}

/// Why a link can no longer decide, in a sentence.
pub fn refusal(view: &LinkView) -> String {
    let r = &view.request;
    match &view.state {
        LinkState::Decided => {
            let verb = match r.status {
                Status::Denied => "denied",
                _ => "approved",
            };
            let by = r.decided_by.as_deref().unwrap_or("another approver");
            let comment =
                r.decision_comment.as_deref().map(|c| format!(" Comment: \u{201c}{c}\u{201d}")).unwrap_or_default();
            format!("This request was already {verb} by {by}; it is now {}.{comment}", r.status)
        }
        LinkState::Expired => format!("This approval link expired at {}. Nothing was decided.", when(r.expires_at)),
        LinkState::Cancelled => "This request was cancelled; its approval links no longer work.".to_string(),
        LinkState::OwnRequest => {
            "You requested this or opened it for someone, so another approver has to decide.".to_string()
        }
        LinkState::SignInRequired => {
            format!("Deciding needs a sign-in: sign in as {} to approve or deny.", view.approver)
        }
        LinkState::NotTheApprover { signed_in } => format!(
            "You are signed in as {signed_in}, but this link is for {}: only they (signed in) may decide.",
            view.approver
        ),
        LinkState::StagePassed => {
            let progress = view.progress();
            let stage = progress.describe(view.stage);
            match progress.open_stage() {
                Some(open) => format!(
                    "{stage} already passed; the request now waits for {}. This link decides nothing more.",
                    progress.describe(open)
                ),
                None => format!("{stage} is over; this link decides nothing more."),
            }
        }
        LinkState::AlreadyCounted => {
            "You already approved this request in one of its stages; one person counts once.".to_string()
        }
        LinkState::DelegationInactive { member } => format!(
            "You were asked as the delegate of {member}, but that delegation is not in force today: \
             only {member} (or an active delegate) may decide."
        ),
        LinkState::Open => String::new(),
    }
}

/// For a request with stages: which one this link is for, who approved, how many more are needed.
fn stage_note(view: &LinkView) -> String {
    let progress = view.progress();
    let Some(stage) = progress.stages.get(view.stage) else { return String::new() };
    if !progress.is_staged() {
        return String::new();
    }
    let approved: Vec<String> = stage.approved_by.iter().map(|a| a.describe()).collect();
    let so_far = if approved.is_empty() { "nobody yet".to_string() } else { approved.join(", ") };
    let mut out = format!(
        "<p class=\"note stage\">This link is for {} of rule {}. Approved so far: {}. {} more needed.</p>",
        esc(&progress.describe(view.stage)),
        esc(&progress.rule),
        esc(&so_far),
        stage.missing()
    );
    if let Some(member) = &view.on_behalf_of {
        out.push_str(&format!(
            "<p class=\"note\">You decide as the delegate of {}: your decision counts for them.</p>",
            esc(member)
        ));
    }
    out
}

/// Who is looking at the page, as far as deciding goes.
pub enum Viewer {
    /// No sign-in here: the link alone decides, and the page says so.
    LinkOnly,
    /// Sign-in is required and this browser has no session.
    NotSignedIn,
    /// Signed in (the e-mail the identity provider verified, and the provider).
    SignedIn { email: String, issuer: String },
}

fn sign_in_link(token_path: &str, approver: &str) -> String {
    format!(
        "<p><a class=\"signin\" href=\"{}/sign-in\">Sign in as {} to decide</a></p>",
        html_escape::encode_double_quoted_attribute(token_path),
        esc(approver)
    )
}

/// The confirmation page: the request, and for an open link the form that decides (or, where
/// sign-in is required and missing, the way to sign in). `token_path` is the page's own path.
pub fn link(
    view: &LinkView,
    viewer: &Viewer,
    token_path: &str,
    preselect: Option<Decision>,
    notice: Option<&str>,
) -> Html<String> {
    let r = &view.request;
    let mut body = format!("<h1>Approve {}?</h1>", esc(&r.source.number));
    let notice = notice.map(str::to_string).or_else(|| (view.state != LinkState::Open).then(|| refusal(view)));
    if let Some(n) = notice {
        body.push_str(&format!("<p class=\"note warn\">{}</p>", esc(&n)));
    }
    body.push_str(&stage_note(view));
    body.push_str(&details(view));
    let may_decide = match viewer {
        Viewer::LinkOnly => true,
        Viewer::NotSignedIn => false,
        Viewer::SignedIn { email, .. } => domain::identity::same_person(email, &view.approver),
    };
    let pending = matches!(view.state, LinkState::Open | LinkState::SignInRequired | LinkState::NotTheApprover { .. });
    if pending && !may_decide {
        if let Viewer::SignedIn { email, .. } = viewer {
            body.push_str(&format!(
                "<p class=\"note warn\">You are signed in as {}; this link is for {}.</p>",
                esc(email),
                esc(&view.approver)
            ));
        }
        body.push_str(&sign_in_link(token_path, &view.approver));
    }
    if pending && may_decide {
        let who = match viewer {
            Viewer::SignedIn { email, issuer } => {
                format!("Signed in as {} at {}. Nothing is decided until you press a button.", esc(email), esc(issuer))
            }
            _ => format!(
                "This link is for {}, and anyone holding this link can decide (no sign-in is configured). \
                 Nothing is decided until you press a button.",
                esc(&view.approver)
            ),
        };
        let cls = |d: Decision, base: &str| if preselect == Some(d) { format!("{base} pre") } else { base.to_string() };
        let focus = |d: Decision| if preselect == Some(d) { " autofocus" } else { "" };
        body.push_str(&format!(
            "<form method=\"post\"><p><label for=\"comment\">Comment (optional, sent to the requester)</label><br>\
             <textarea id=\"comment\" name=\"comment\" maxlength=\"2000\"></textarea></p>\
             <p><button type=\"submit\" name=\"decision\" value=\"approve\" class=\"{}\"{}>Approve</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"{}\"{}>Deny</button></p></form>\
             <p class=\"note\">{who}</p>",
            cls(Decision::Approve, "approve"),
            focus(Decision::Approve),
            cls(Decision::Deny, "deny"),
            focus(Decision::Deny),
        ));
    }
    shell(&format!("Approval: {}", r.source.number), &body)
}

pub fn decided(view: &LinkView, message: &str) -> Html<String> {
    let body =
        format!("<h1>{}</h1><p class=\"note\">{}</p>{}", esc(&view.request.source.number), esc(message), details(view));
    shell(&format!("Decided: {}", view.request.source.number), &body)
}
