use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::{Error, Result};
use lettre::Message;
use serde::Serialize;

use crate::Transport;

/// Writes each mail as an RFC 5322 `.eml` file, named so that names sort by time. Written to a
/// temporary name and renamed, so a reader never sees half a mail.
pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    pub fn new(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create outbox {}", dir.display()), e))?;
        Ok(Self { dir })
    }
}

#[async_trait]
impl Transport for FileOutbox {
    async fn deliver(&self, message: Message) -> Result<()> {
        let bytes = message.formatted();
        let name = format!("{}-{}.eml", jiff::Timestamp::now().as_microsecond(), uuid::Uuid::new_v4().simple());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let fail = |e: std::io::Error| {
            Error::upstream_caused("mail outbox", format!("cannot write to {}", self.dir.display()), e)
        };
        tokio::fs::write(&tmp, bytes).await.map_err(fail)?;
        tokio::fs::rename(&tmp, self.dir.join(name)).await.map_err(fail)
    }
}

/// One mail of the outbox, parsed back for `/dev/outbox` and for tests.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxMail {
    pub file: String,
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub date: String,
    pub text: String,
    pub html: String,
}

/// Reads every `.eml` in `dir`, oldest first.
pub fn read_outbox(dir: &Path) -> std::io::Result<Vec<OutboxMail>> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut mails = Vec::with_capacity(names.len());
    for name in names {
        let raw = std::fs::read(dir.join(&name))?;
        let Some(msg) = mail_parser::MessageParser::default().parse(&raw) else { continue };
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.map(|a| a.iter().filter_map(|x| x.address().map(str::to_string)).collect()).unwrap_or_default()
        };
        mails.push(OutboxMail {
            file: name,
            to: addrs(msg.to()),
            from: addrs(msg.from()).join(", "),
            subject: msg.subject().unwrap_or_default().to_string(),
            date: msg.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
            text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        });
    }
    Ok(mails)
}
