//! Signs in at the real OpenID provider of `tests/oidc/provider.mjs` (node-oidc-provider) without
//! a browser: `GET` the authorize URL, follow the redirects to the interaction, post the login form
//! (and the consent form when one is shown), follow the redirects until the one back to the
//! client's `redirect_uri`, and answer that `Location` without requesting it.
//!
//! A plain module file, to include from a test with
//! `#[path = "../../tests/oidc/signin.rs"] mod signin;` (relative to the including file). It needs
//! only `reqwest` (features `form`); cookies are kept here, per call, so every call is a fresh
//! browser session whatever the client holds, and the `Cookie` header goes only to the provider's
//! origin. The client must follow no redirect (`reqwest::redirect::Policy::none()`), else the
//! redirect back to the client would be requested.

#![allow(dead_code)]

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};

/// A client that follows no redirect, as a sign-in needs (see above).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value and attributes of the `Set-Cookie` named `name` in `resp`.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| (v.to_string(), attrs.to_string()))
    })
}

/// As [`try_sign_in_at_real_provider`], panicking with the reason when the sign-in fails.
pub async fn sign_in_at_real_provider(
    http: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    password: &str,
) -> String {
    match try_sign_in_at_real_provider(http, authorize_url, email, password).await {
        Ok(location) => location,
        Err(err) => panic!("sign-in as {email} at the real provider failed: {err}"),
    }
}

/// Walks the provider's pages as a browser would and answers the URL it redirects to at the
/// client's `redirect_uri` (with `code`, `state` and `iss`, or `error`). A wrong password gives
/// `Err` starting with "invalid credentials".
pub async fn try_sign_in_at_real_provider(
    http: &reqwest::Client,
    authorize_url: &str,
    email: &str,
    password: &str,
) -> Result<String, String> {
    let start = Url::parse(authorize_url).map_err(|e| format!("authorize URL {authorize_url}: {e}"))?;
    let redirect_uri = start
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .ok_or("the authorize URL has no redirect_uri")?;
    let redirect_uri = Url::parse(&redirect_uri).map_err(|e| format!("redirect_uri {redirect_uri}: {e}"))?;

    let mut jar = Jar::default();
    let mut url = start.clone();
    let mut method = Method::GET;
    let mut form: Vec<(String, String)> = Vec::new();
    let mut login_posted = false;
    for _ in 0..25 {
        let mut request = http.request(method.clone(), url.clone());
        if same_origin(&url, &start)
            && let Some(cookies) = jar.header_for(&url)
        {
            request = request.header(COOKIE, cookies);
        }
        if method == Method::POST {
            request = request.form(&form);
        }
        let resp = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        if resp.url() != &url {
            return Err(format!(
                "the client followed a redirect from {url} to {}: build it with reqwest::redirect::Policy::none()",
                resp.url()
            ));
        }
        if same_origin(&url, &start) {
            for value in resp.headers().get_all(SET_COOKIE) {
                if let Ok(value) = value.to_str() {
                    jar.store(&url, value);
                }
            }
        }
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{status} from {url} without a Location"))?;
            let next = url.join(location).map_err(|e| format!("Location {location}: {e}"))?;
            if same_origin(&next, &redirect_uri) && next.path() == redirect_uri.path() {
                return Ok(next.to_string());
            }
            if !same_origin(&next, &start) {
                return Err(format!("redirected away to {next}, neither the provider nor the redirect_uri"));
            }
            url = next;
            method = Method::GET;
            form.clear();
            continue;
        }
        let body = resp.text().await.map_err(|e| format!("reading {url}: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("{method} {url} answered {status}: {}", text_of(&body)));
        }
        let page = parse_form(&body).ok_or_else(|| format!("{url}: a page without a form: {}", text_of(&body)))?;
        let action = url.join(&page.action).map_err(|e| format!("form action {}: {e}", page.action))?;
        form = Vec::new();
        if page.has_password {
            if login_posted {
                return Err(format!("invalid credentials: {}", text_of(&body)));
            }
            login_posted = true;
            for input in &page.inputs {
                match (input.kind.as_str(), input.name.as_str()) {
                    ("password", _) => form.push((input.name.clone(), password.to_string())),
                    ("email", _) | (_, "login" | "email" | "username") => {
                        form.push((input.name.clone(), email.to_string()))
                    }
                    ("submit" | "button" | "checkbox" | "radio", _) => {}
                    _ => form.push((input.name.clone(), input.value.clone())),
                }
            }
        } else {
            // A consent (or other confirmation) form: submit it as it is.
            for input in &page.inputs {
                if !matches!(input.kind.as_str(), "submit" | "button" | "checkbox" | "radio") {
                    form.push((input.name.clone(), input.value.clone()));
                }
            }
        }
        url = action;
        method = if page.method.eq_ignore_ascii_case("get") { Method::GET } else { Method::POST };
        if method == Method::GET {
            url.query_pairs_mut().extend_pairs(form.iter());
        }
    }
    Err(format!("no redirect to {redirect_uri} after 25 steps (last {url})"))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// The visible text of a page, shortened: for error messages.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let text = out.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

#[derive(Default)]
struct Jar {
    /// (name, path, value)
    cookies: Vec<(String, String, String)>,
}

impl Jar {
    /// RFC 6265 in short: the Path attribute or the default path; an empty value, `Max-Age` ≤ 0
    /// or an `Expires` in 1970 deletes.
    fn store(&mut self, url: &Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { return };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        let mut path = None;
        let mut delete = value.is_empty();
        for attr in parts {
            let (key, val) = attr.split_once('=').map_or((attr.trim(), ""), |(k, v)| (k.trim(), v.trim()));
            match key.to_ascii_lowercase().as_str() {
                "path" if val.starts_with('/') => path = Some(val.to_string()),
                "max-age" => delete |= val.parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => delete |= val.contains("1970"),
                _ => {}
            }
        }
        let path = path.unwrap_or_else(|| match url.path().rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => url.path()[..i].to_string(),
        });
        self.cookies.retain(|(n, p, _)| !(n == &name && p == &path));
        if !delete {
            self.cookies.push((name, path, value));
        }
    }

    fn header_for(&self, url: &Url) -> Option<String> {
        let request_path = url.path();
        let matching: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, path, _)| {
                request_path == path
                    || (request_path.starts_with(path.as_str())
                        && (path.ends_with('/') || request_path[path.len()..].starts_with('/')))
            })
            .map(|(name, _, value)| format!("{name}={value}"))
            .collect();
        (!matching.is_empty()).then(|| matching.join("; "))
    }
}

struct Input {
    name: String,
    kind: String,
    value: String,
}

struct Form {
    action: String,
    method: String,
    inputs: Vec<Input>,
    has_password: bool,
}

/// The first `<form>` of a page: its action, method and named inputs.
fn parse_form(page: &str) -> Option<Form> {
    let start = page.find("<form")?;
    let end = page[start..].find("</form>").map_or(page.len(), |i| start + i);
    let html = &page[start..end];
    let open = &html[..html.find('>')?];
    let mut inputs = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |j| i + j);
        let tag = &rest[i..tag_end];
        if let Some(name) = attr(tag, "name") {
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into()).to_ascii_lowercase();
            inputs.push(Input { name, kind, value: attr(tag, "value").unwrap_or_default() });
        }
        rest = &rest[tag_end..];
    }
    let has_password = inputs.iter().any(|i| i.kind == "password");
    Some(Form {
        action: attr(open, "action").unwrap_or_default(),
        method: attr(open, "method").unwrap_or_else(|| "get".into()),
        inputs,
        has_password,
    })
}

/// An attribute of a tag, quoted with `"` or `'`, entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| from + i) {
        from = i + name.len();
        let before_ok = lower[..i].ends_with(|c: char| c.is_ascii_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let quote = value.chars().next()?;
        let raw = if quote == '"' || quote == '\'' {
            let inner = &value[1..];
            &inner[..inner.find(quote)?]
        } else {
            value.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or_default()
        };
        return Some(
            raw.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
    }
    None
}
