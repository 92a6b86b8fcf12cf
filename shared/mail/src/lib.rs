//! Mail: the templates (the one place every mail's words live) and the transports that deliver
//! them — a file outbox of RFC 5322 `.eml` files and SMTP; SES plugs in through `Transport`.

pub mod outbox;
pub mod templates;

use std::sync::Arc;

use async_trait::async_trait;
use domain::config::MailTransport;
use domain::mail::MailNotice;
use domain::model::Request;
use domain::ports::Mailer;
use domain::token::LinkKey;
use domain::{Error, Result};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use outbox::{FileOutbox, OutboxMail, read_outbox};
pub use templates::{RenderedMail, render};

/// Delivers one built message.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, message: Message) -> Result<()>;
}

pub struct Smtp(AsyncSmtpTransport<Tokio1Executor>);

impl Smtp {
    pub fn from_url(url: &str) -> Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::internal("GATEHOUSE_SMTP_URL is not a valid SMTP URL", e))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        Ok(Self(transport))
    }
}

#[async_trait]
impl Transport for Smtp {
    async fn deliver(&self, message: Message) -> Result<()> {
        self.0
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| Error::upstream_caused("SMTP relay", "refused or failed to take the mail", e))
    }
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
            MailTransport::Smtp { url } => Ok(Arc::new(Smtp::from_url(url)?)),
            MailTransport::Ses { .. } => Err(Error::internal_msg("the SES transport is provided by the AWS adapter")),
        }
    }

    pub fn build(&self, notice: &MailNotice, request: &Request) -> Result<Message> {
        let to: Mailbox = notice
            .to
            .parse()
            .map_err(|e| Error::internal(format!("recipient of a {:?} mail does not parse", notice.template), e))?;
        let mail = render(&notice.template, request, &self.base_url, &self.links);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| Error::internal("building a mail failed", e))
    }
}

#[async_trait]
impl Mailer for TemplateMailer {
    async fn send(&self, notice: &MailNotice, request: &Request) -> Result<()> {
        let message = self.build(notice, request)?;
        self.transport.deliver(message).await
    }
}
