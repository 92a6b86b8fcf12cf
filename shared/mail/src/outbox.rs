use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::{Error, Result};
use lettre::Message;
use serde::Serialize;

use crate::Transport;

/// Writes each mail as an RFC 5322 `.eml` file, named so that names sort by time. Written to a
/// temporary name and renamed, so a reader never sees half a mail. The mails carry approval
/// links, so (on unix) a folder the outbox creates is 0700 and every file 0600.
pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    pub fn new(dir: PathBuf) -> Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            // The mode of every folder created (std DirBuilderExt::mode); an existing one is kept.
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(|e| Error::internal(format!("cannot create outbox {}", dir.display()), e))?;
        Ok(Self { dir })
    }
}

/// Writes `bytes` to a new file `path`, readable by this user only (0600 on unix).
async fn write_private(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            // Applied when the file is created (std OpenOptionsExt::mode).
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(&path)?.write_all(&bytes)
    })
    .await
    .map_err(std::io::Error::other)?
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
        write_private(tmp.clone(), bytes).await.map_err(fail)?;
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

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_outbox_folder_is_0700_and_its_mails_0600() {
        let root = std::env::temp_dir().join(format!("gatehouse-outbox-{}", uuid::Uuid::new_v4().simple()));
        let dir = root.join("data").join("outbox");
        let outbox = FileOutbox::new(dir.clone()).unwrap();
        assert_eq!(mode(&root.join("data")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let message = Message::builder()
            .from("gatehouse@example.com".parse().unwrap())
            .to("ada@example.com".parse().unwrap())
            .subject("Approve?")
            .body("https://gatehouse.example.com/v1/approvals/secret-token".to_string())
            .unwrap();
        outbox.deliver(message).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].extension().is_some_and(|e| e == "eml"));
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(read_outbox(&dir).unwrap()[0].subject, "Approve?");
        std::fs::remove_dir_all(root).unwrap();
    }
}
