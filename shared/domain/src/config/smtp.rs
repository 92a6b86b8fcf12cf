//! The SMTP relay's settings (`GATEHOUSE_MAIL_TRANSPORT=smtp`).
//!
//! `GATEHOUSE_SMTP_URL` in lettre's URL form (`smtp://relay:587?tls=required` for STARTTLS,
//! `smtps://relay:465` for TLS from the first byte); the credentials either in the URL or, so a
//! password can come from a secret of its own, in `GATEHOUSE_SMTP_USER` and
//! `GATEHOUSE_SMTP_PASSWORD`; `GATEHOUSE_SMTP_CA_FILE` adds a CA (PEM) to trust for a relay with a
//! private certificate. Mail carries approval links and AUTH carries a password, so mail goes over
//! verified TLS except to a loopback relay: the outbound rule of the HTTP clients
//! (DESIGN.md, "Trust and identity", Outbound; `crate::outbound`), applied to SMTP.

use std::path::PathBuf;

use url::Url;

use super::{ConfigError, Secret, Settings, bad};
use crate::outbound;

const URL: &str = "GATEHOUSE_SMTP_URL";
const USER: &str = "GATEHOUSE_SMTP_USER";
const PASSWORD: &str = "GATEHOUSE_SMTP_PASSWORD";
const CA_FILE: &str = "GATEHOUSE_SMTP_CA_FILE";
const FORM: &str = "must be an SMTP URL like smtp://relay.example.com:587?tls=required or smtps://relay.example.com";

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS before anything else, or no mail (`smtp://…?tls=required`, port 587 by default).
    StartTls,
    /// TLS from the first byte (`smtps://…`, port 465 by default).
    Implicit,
    /// STARTTLS when the relay offers it (`?tls=opportunistic`): loopback only, as it can be stripped.
    Opportunistic,
    /// None (`smtp://…`, port 25 by default): loopback only.
    None,
}

impl SmtpTls {
    /// Whether every byte after the greeting is encrypted and the relay's certificate verified.
    pub fn always(self) -> bool {
        matches!(self, SmtpTls::StartTls | SmtpTls::Implicit)
    }
}

/// What Gatehouse authenticates to the relay with (AUTH PLAIN or LOGIN, whichever it offers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// A host name or an IP address (an IPv6 one without brackets); also the name the relay's
    /// certificate must carry.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<SmtpCredentials>,
    /// A PEM file of CA certificates trusted besides the public roots.
    pub ca_file: Option<PathBuf>,
    /// The name Gatehouse greets with (EHLO): the URL's path, else this machine's host name.
    pub hello_name: Option<String>,
}

/// RFC 3986 percent-decoding of a URL's user or password, as lettre reads them.
fn percent_decoded(setting: &str, part: &str, value: &str) -> Result<String, ConfigError> {
    let fail = || bad(setting, format!("has a {part} that is not valid percent-encoded UTF-8"));
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).ok_or_else(fail)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| fail())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| fail())
}

impl SmtpSettings {
    /// Reads the relay's settings. Messages name the setting and never repeat the URL, which may
    /// hold a password.
    pub fn load<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<Self, ConfigError> {
        let text = s.required(URL)?;
        let url = Url::parse(&text).map_err(|_| bad(URL, FORM))?;
        let tls_param: Vec<String> = url
            .query_pairs()
            .map(|(k, v)| {
                if k == "tls" {
                    Ok(v.into_owned())
                } else {
                    Err(bad(URL, format!("has an unknown parameter {k:?}; {FORM}")))
                }
            })
            .collect::<Result<_, _>>()?;
        let (tls, default_port) = match (url.scheme(), tls_param.as_slice()) {
            ("smtp", []) => (SmtpTls::None, 25),
            ("smtp", [t]) if t == "required" => (SmtpTls::StartTls, 587),
            ("smtp", [t]) if t == "opportunistic" => (SmtpTls::Opportunistic, 587),
            ("smtps", []) => (SmtpTls::Implicit, 465),
            _ => return Err(bad(URL, FORM)),
        };
        let host_in_url = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad(URL, FORM))?;
        // One loopback definition for every client: read the host as an http URL's would be.
        let loopback = Url::parse(&format!("http://{host_in_url}")).is_ok_and(|u| outbound::is_loopback(&u));
        if !tls.always() && !loopback {
            return Err(bad(
                URL,
                "would send mail (with its approval links) unencrypted to a relay that is not on this \
                 machine: use ?tls=required (STARTTLS) or smtps:// (plain smtp only to a loopback host: \
                 127.0.0.0/8, ::1 or localhost)",
            ));
        }
        let in_url = match url.password() {
            Some(password) => Some(SmtpCredentials {
                user: percent_decoded(URL, "user", url.username())?,
                password: Secret::new(percent_decoded(URL, "password", password)?),
            }),
            None if !url.username().is_empty() => {
                return Err(bad(URL, format!("names a user but no password (or set {USER} and {PASSWORD})")));
            }
            None => None,
        };
        let from_settings = match s.optional(USER) {
            Some(user) => Some(SmtpCredentials { user, password: Secret::new(s.required(PASSWORD)?) }),
            None if s.optional(PASSWORD).is_some() => return Err(bad(USER, format!("is not set, but {PASSWORD} is"))),
            None => None,
        };
        let credentials = match (in_url, from_settings) {
            (Some(_), Some(_)) => {
                return Err(bad(URL, format!("holds credentials and so do {USER}/{PASSWORD}: set them in one place")));
            }
            (a, b) => a.or(b),
        };
        let ca_file = s.optional(CA_FILE).map(PathBuf::from);
        if ca_file.is_some() && tls == SmtpTls::None {
            return Err(bad(CA_FILE, format!("is set, but {URL} uses no TLS (add ?tls=required, or use smtps://)")));
        }
        let path = url.path().trim_matches('/');
        Ok(SmtpSettings {
            host: host_in_url.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: url.port().unwrap_or(default_port),
            tls,
            credentials,
            ca_file,
            hello_name: (!path.is_empty()).then(|| path.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<SmtpSettings, ConfigError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SmtpSettings::load(&Settings::new(move |k| map.get(k).cloned()))
    }

    #[test]
    fn starttls_implicit_tls_and_plain_loopback_relays_load_with_their_default_ports() {
        let s = load(&[(URL, "smtp://relay.example.com?tls=required")]).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls, s.credentials),
            ("relay.example.com", 587, SmtpTls::StartTls, None)
        );
        let s = load(&[(URL, "smtps://relay.example.com")]).unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        let s = load(&[(URL, "smtp://127.0.0.1")]).unwrap();
        assert_eq!((s.port, s.tls), (25, SmtpTls::None));
        let s = load(&[(URL, "smtp://[::1]:2525/gatehouse.example.com?tls=opportunistic")]).unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("::1", 2525, SmtpTls::Opportunistic));
        assert_eq!(s.hello_name.as_deref(), Some("gatehouse.example.com"));
    }

    #[test]
    fn mail_goes_unencrypted_only_to_a_loopback_relay() {
        for url in
            ["smtp://relay.example.com:25", "smtp://10.0.0.5:587?tls=opportunistic", "smtp://localhost.example.com"]
        {
            let err = load(&[(URL, url)]).unwrap_err();
            assert_eq!(err.setting, URL);
            assert!(err.problem.contains("tls=required"), "{url}: {err}");
        }
        for url in ["smtp://localhost:1025", "smtp://127.0.0.2", "smtp://[::1]"] {
            assert!(load(&[(URL, url)]).is_ok(), "{url}");
        }
    }

    #[test]
    fn credentials_come_from_the_url_or_from_their_own_settings_and_never_show() {
        let s = load(&[(URL, "smtp://gate%40house:p%40ss%2Fw0rd-hunter2@relay.example.com:587?tls=required")]).unwrap();
        let c = s.credentials.clone().unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("gate@house", "p@ss/w0rd-hunter2"));
        let s2 = load(&[(URL, "smtps://relay.example.com"), (USER, "gatehouse"), (PASSWORD, "hunter2-from-a-secret")])
            .unwrap();
        assert_eq!(s2.credentials.as_ref().unwrap().password.expose(), "hunter2-from-a-secret");
        for shown in [format!("{s:?}"), format!("{s2:?}")] {
            assert!(!shown.contains("hunter2") && !shown.contains("w0rd"), "{shown}");
        }
    }

    #[test]
    fn each_bad_setting_is_named_without_repeating_the_password() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(URL, "http://relay.example.com")], URL),
            (&[(URL, "relay.example.com:587")], URL),
            (&[(URL, "smtp://relay.example.com?tls=sometimes")], URL),
            (&[(URL, "smtp://relay.example.com?tls=required&auth=plain")], URL),
            (&[(URL, "smtps://relay.example.com?tls=required")], URL),
            (&[(URL, "smtps://gatehouse@relay.example.com")], URL),
            (&[(URL, "smtps://u:hunter2@relay.example.com"), (USER, "u"), (PASSWORD, "other")], URL),
            (&[(URL, "smtps://relay.example.com"), (USER, "gatehouse")], PASSWORD),
            (&[(URL, "smtps://relay.example.com"), (PASSWORD, "hunter2")], USER),
            (&[(URL, "smtp://127.0.0.1:25"), (CA_FILE, "/etc/gatehouse/relay-ca.pem")], CA_FILE),
            (&[(URL, "smtps://u:%ff%fe-hunter2@relay.example.com")], URL),
        ];
        for (pairs, setting) in cases {
            let err = load(pairs).unwrap_err();
            assert_eq!(&err.setting, setting, "{pairs:?}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
