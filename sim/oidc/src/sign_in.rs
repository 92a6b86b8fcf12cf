//! The client side of a sign-in at this simulator, for tests and tools that cannot click: walks
//! the authorize page's form over HTTP and answers where the simulator redirects.

use super::*;

/// Signs in at an oidc-sim that may run in another process (for example inside `gatehouse serve
/// --demo`): `GET authorize_url` with a client that follows no redirect, posts the sign-in form,
/// and answers the `Location` it redirects to (with `code`, `state` and `iss`, or with `error` when
/// the user cancelled or the request was faulty), without requesting it.
pub async fn try_sign_in(authorize_url: &str, email: &str, password: &str) -> Result<String, SignInError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SignInError::Protocol(e.to_string()))?;
    let page_url =
        reqwest::Url::parse(authorize_url).map_err(|e| SignInError::Protocol(format!("{authorize_url}: {e}")))?;
    let resp = http.get(page_url.clone()).send().await.map_err(|e| SignInError::Protocol(e.to_string()))?;
    if let Some(location) = redirect_location(&page_url, &resp)? {
        return Ok(location);
    }
    let status = resp.status();
    let body = resp.text().await.map_err(|e| SignInError::Protocol(e.to_string()))?;
    if status != reqwest::StatusCode::OK {
        return Err(SignInError::Refused { status: status.as_u16(), body });
    }
    let form = parse_form(&body).ok_or_else(|| SignInError::Protocol("no sign-in form on the page".into()))?;
    let action = page_url.join(&form.action).map_err(|e| SignInError::Protocol(format!("form action: {e}")))?;
    let mut fields: Vec<(String, String)> =
        form.hidden.into_iter().filter(|(name, _)| name != "email" && name != "password").collect();
    fields.push(("email".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let resp =
        http.post(action.clone()).form(&fields).send().await.map_err(|e| SignInError::Protocol(e.to_string()))?;
    if let Some(location) = redirect_location(&action, &resp)? {
        return Ok(location);
    }
    let status = resp.status();
    let body = resp.text().await.map_err(|e| SignInError::Protocol(e.to_string()))?;
    if status == reqwest::StatusCode::OK {
        let message = between(&body, "<p class=\"error\">", "</p>").unwrap_or("the form came back").to_string();
        return Err(SignInError::InvalidCredentials(message));
    }
    Err(SignInError::Refused { status: status.as_u16(), body })
}

pub(crate) fn redirect_location(base: &reqwest::Url, resp: &reqwest::Response) -> Result<Option<String>, SignInError> {
    if !resp.status().is_redirection() {
        return Ok(None);
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SignInError::Protocol(format!("{} without a Location", resp.status())))?;
    let absolute = base.join(location).map_err(|e| SignInError::Protocol(format!("Location {location}: {e}")))?;
    Ok(Some(absolute.to_string()))
}

pub(crate) struct ParsedForm {
    pub(crate) action: String,
    pub(crate) hidden: Vec<(String, String)>,
}

/// The first `<form>` of a page the simulator rendered: its action and hidden inputs.
pub(crate) fn parse_form(page: &str) -> Option<ParsedForm> {
    let start = page.find("<form")?;
    let end = page[start..].find("</form>").map(|i| start + i)?;
    let form = &page[start..end];
    let open = &form[..form.find('>')?];
    let action = attr(open, "action").unwrap_or_default();
    let mut hidden = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map(|j| i + j)?;
        let tag = &rest[i..tag_end];
        if attr(tag, "type").as_deref() == Some("hidden")
            && let Some(name) = attr(tag, "name")
        {
            hidden.push((name, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[tag_end..];
    }
    Some(ParsedForm { action, hidden })
}

pub(crate) fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

pub(crate) fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}
