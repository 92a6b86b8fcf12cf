//! Mail: the templates (the one place every mail's words live) and the transports that deliver
//! them — a file outbox of RFC 5322 `.eml` files and SMTP; SES plugs in through `Transport`.

pub mod outbox;
pub mod smtp;
pub mod templates;

use std::sync::Arc;

use async_trait::async_trait;
use domain::config::MailTransport;
use domain::mail::MailNotice;
use domain::model::Request;
use domain::ports::{Mailer, SentMail};
use domain::token::LinkKey;
use domain::{Error, Result};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

pub use outbox::{FileOutbox, OutboxMail, read_outbox};
pub use smtp::Smtp;
pub use templates::{RenderedMail, render};

/// Delivers one built message.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, message: Message) -> Result<()>;
}

/// Renders a notice with the templates and hands it to the transport.
pub struct TemplateMailer {
    from: Mailbox,
    base_url: String,
    links: LinkKey,
    transport: Arc<dyn Transport>,
}

impl TemplateMailer {
    /// `links` derives the approval links' tokens from their ids as each mail is rendered.
    pub fn new(from: &str, base_url: &str, links: LinkKey, transport: Arc<dyn Transport>) -> Result<Self> {
        let from = from.parse::<Mailbox>().map_err(|e| Error::internal("the sender address does not parse", e))?;
        Ok(Self { from, base_url: base_url.trim_end_matches('/').to_string(), links, transport })
    }

    /// The transports this crate provides, chosen by configuration. SES lives in its own adapter.
    pub fn transport_for(config: &MailTransport) -> Result<Arc<dyn Transport>> {
        match config {
            MailTransport::Outbox { dir } => Ok(Arc::new(FileOutbox::new(dir.clone())?)),
            MailTransport::Smtp(settings) => Ok(Arc::new(Smtp::new(settings)?)),
            MailTransport::Ses { .. } => Err(Error::internal_msg("the SES transport is provided by the AWS adapter")),
        }
    }

    pub fn build(&self, notice: &MailNotice, request: &Request) -> Result<Message> {
        self.build_with_subject(notice, request).map(|(message, _)| message)
    }

    /// The message and its subject.
    fn build_with_subject(&self, notice: &MailNotice, request: &Request) -> Result<(Message, String)> {
        let to: Mailbox = notice
            .to
            .parse()
            .map_err(|e| Error::internal(format!("recipient of a {:?} mail does not parse", notice.template), e))?;
        let mail = render(&notice.template, request, &self.base_url, &self.links);
        // RFC 5322 section 3.6.4: every message should carry a Message-ID; lettre adds none and
        // not every relay does. Its right-hand side is the sender's domain, not this host's name.
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(message_id))
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| Error::internal("building a mail failed", e))?;
        Ok((message, mail.subject))
    }
}

#[async_trait]
impl Mailer for TemplateMailer {
    async fn send(&self, notice: &MailNotice, request: &Request) -> Result<SentMail> {
        let (message, subject) = self.build_with_subject(notice, request)?;
        self.transport.deliver(message).await?;
        Ok(SentMail { subject })
    }
}
