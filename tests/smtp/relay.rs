//! The real SMTP server tests/smtp/start-smtp.sh started (aiosmtpd: STARTTLS, then AUTH), as the
//! mail tests see it: the settings that point Gatehouse at it, the mail it took (each .eml parsed
//! as a mail client would read it), its refusal control, and a stand-in address where it is down
//! until the test brings it up.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use domain::config::{MailTransport, Settings, SmtpSettings};
use mail_parser::{MessageParser, MimeHeaders, Protocol};

/// The server's address, credentials and folders, from the variables start-smtp.sh exports.
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub ca_file: PathBuf,
    pub maildir: PathBuf,
    pub refuse_dir: PathBuf,
}

/// One mail the server took, parsed.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub file: String,
    pub to: Vec<String>,
    pub from: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub has_date: bool,
    /// The RFC 3848 protocol of the server's Received header (ESMTPSA: over TLS, authenticated).
    pub received_with: Option<Protocol>,
    /// The top-level content type, as `type/subtype`.
    pub content_type: String,
    /// The text/plain and text/html parts, decoded.
    pub text: String,
    pub html: String,
}

impl Delivered {
    /// The link labelled `label` in the text part (`Approve: https://…`).
    pub fn text_link(&self, label: &str) -> Option<String> {
        self.text.lines().find_map(|l| l.strip_prefix(&format!("{label}: ")).map(|u| u.trim().to_string()))
    }

    /// Every `href` of the HTML part, unescaped as a browser would.
    pub fn html_links(&self) -> Vec<String> {
        self.html
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|href| html_escape::decode_html_entities(href).into_owned())
            .collect()
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| {
        panic!("{key} is not set: the mail tests need the SMTP server. Run tests/run.sh, or eval \"$(tests/smtp/start-smtp.sh)\" first")
    })
}

impl Relay {
    pub fn from_env() -> Self {
        Relay {
            host: env("GATEHOUSE_TEST_SMTP_HOST"),
            port: env("GATEHOUSE_TEST_SMTP_PORT").parse().expect("GATEHOUSE_TEST_SMTP_PORT is a port"),
            user: env("GATEHOUSE_TEST_SMTP_USER"),
            password: env("GATEHOUSE_TEST_SMTP_PASSWORD"),
            ca_file: env("GATEHOUSE_TEST_SMTP_CA_FILE").into(),
            maildir: env("GATEHOUSE_TEST_SMTP_MAILDIR").into(),
            refuse_dir: env("GATEHOUSE_TEST_SMTP_REFUSE_DIR").into(),
        }
    }

    /// The settings a site would give `gatehouse serve` for this server (or for `port`, a stand-in
    /// in front of it): STARTTLS required, the password in a setting of its own, the test CA.
    pub fn settings(&self, port: u16) -> Vec<(String, String)> {
        [
            ("GATEHOUSE_MAIL_TRANSPORT", "smtp".to_string()),
            ("GATEHOUSE_SMTP_URL", format!("smtp://{}:{port}?tls=required", self.host)),
            ("GATEHOUSE_SMTP_USER", self.user.clone()),
            ("GATEHOUSE_SMTP_PASSWORD", self.password.clone()),
            ("GATEHOUSE_SMTP_CA_FILE", self.ca_file.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `settings` read by the configuration loader, adjusted by `tune` first (a setting removed
    /// or changed), for a Gatehouse started in-process.
    pub fn transport(&self, port: u16, tune: impl FnOnce(&mut BTreeMap<String, String>)) -> MailTransport {
        let mut values: BTreeMap<String, String> = self.settings(port).into_iter().collect();
        tune(&mut values);
        MailTransport::Smtp(SmtpSettings::load(&Settings::new(move |k| values.get(k).cloned())).unwrap())
    }

    /// From now on the server answers 554 to every mail for `address`.
    pub fn refuse(&self, address: &str) {
        std::fs::write(self.refuse_dir.join(address.to_lowercase()), b"").unwrap();
    }

    /// The server takes `address`'s mail again.
    pub fn accept(&self, address: &str) {
        std::fs::remove_file(self.refuse_dir.join(address.to_lowercase())).unwrap();
    }

    /// Every mail the server took, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut names: Vec<String> = std::fs::read_dir(&self.maildir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
            .collect();
        names.sort();
        names.into_iter().map(|name| self.parse(name)).collect()
    }

    fn parse(&self, file: String) -> Delivered {
        let raw = std::fs::read(self.maildir.join(&file)).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap_or_else(|| panic!("{file} does not parse"));
        let addresses = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.map(|a| a.iter().filter_map(|x| x.address().map(str::to_string)).collect()).unwrap_or_default()
        };
        let part = |subtype: &str| -> String {
            let parts: Vec<&str> = msg
                .parts
                .iter()
                .filter(|p| p.is_content_type("text", subtype))
                .filter_map(|p| p.text_contents())
                .collect();
            assert!(parts.len() <= 1, "{file} has {} text/{subtype} parts", parts.len());
            parts.first().map(|t| t.to_string()).unwrap_or_default()
        };
        let content_type = msg
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
            .unwrap_or_default();
        Delivered {
            to: addresses(msg.to()),
            from: addresses(msg.from()),
            subject: msg.subject().unwrap_or_default().to_string(),
            message_id: msg.message_id().map(str::to_string),
            has_date: msg.date().is_some(),
            received_with: msg.received().and_then(|r| r.with()),
            content_type,
            text: part("plain"),
            html: part("html"),
            file,
        }
    }

    pub fn delivered_to(&self, to: &str) -> Vec<Delivered> {
        self.delivered().into_iter().filter(|m| m.to.iter().any(|t| t == to)).collect()
    }

    /// Waits for the mail to `to` whose subject starts with `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Delivered {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.delivered_to(to).into_iter().find(|m| m.subject.starts_with(subject)) {
                return m;
            }
            let seen: Vec<String> = self.delivered_to(to).into_iter().map(|m| m.subject).collect();
            assert!(tokio::time::Instant::now() < deadline, "no mail {subject:?} to {to} arrived; it has {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A loopback port where nothing listens: a relay that is down.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Brings the relay up at `port`: from now on a connection there reaches the real server (every
/// byte passed on, STARTTLS included, so the certificate is still checked end to end).
pub async fn bring_up(port: u16, relay: &Relay) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the stand-in port is free");
    let upstream = format!("{}:{}", relay.host, relay.port);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}
