//! Amazon SES as a mail transport: SES v2 `SendEmail` with the whole RFC 5322 message as raw
//! content, so the text and the HTML part (and every header the templates set) arrive as built.
//! `transport_for` picks SES, SMTP or the file outbox from the configuration.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::BehaviorVersion;
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::operation::send_email::builders::SendEmailFluentBuilder;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use domain::config::MailTransport;
use domain::{Error, Result};
use lettre::Message;
use mail::{TemplateMailer, Transport};

/// What errors name as the failing system.
pub const SYSTEM: &str = "Amazon SES";

/// 2 s to connect, 5 s per attempt, 10 s for a send with its retries.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

#[derive(Clone, Debug)]
pub struct SesTransport {
    client: Client,
    configuration_set: Option<String>,
}

impl SesTransport {
    /// Sends through `client`, tagging every mail with `configuration_set` if given. The sender (the
    /// message's From) must be a verified SES identity.
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        Self { client, configuration_set }
    }

    /// A client from the SDK's default configuration chain (region, credentials, `AWS_ENDPOINT_URL`)
    /// with `timeouts()`.
    pub async fn from_env(configuration_set: Option<String>) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await;
        Self::new(Client::new(&config), configuration_set)
    }

    /// The SendEmail call for `message`, not yet sent: the envelope sender and recipients, the raw
    /// message, the configuration set.
    pub fn request(&self, message: &Message) -> Result<SendEmailFluentBuilder> {
        let envelope = message.envelope();
        let from = envelope.from().map(|a| a.to_string());
        // The envelope, not the headers, says who gets it (lettre drops Bcc from the headers).
        let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
        let raw = RawMessage::builder()
            .data(Blob::new(message.formatted()))
            .build()
            .map_err(|e| Error::internal("building the SES raw message", e))?;
        Ok(self
            .client
            .send_email()
            .set_from_email_address(from)
            .destination(Destination::builder().set_to_addresses(Some(to)).build())
            .content(EmailContent::builder().raw(raw).build())
            .set_configuration_set_name(self.configuration_set.clone()))
    }
}

#[async_trait]
impl Transport for SesTransport {
    async fn deliver(&self, message: Message) -> Result<()> {
        let out =
            self.request(&message)?.send().await.map_err(|e| Error::upstream_caused(SYSTEM, "SendEmail failed", e))?;
        tracing::debug!(message_id = out.message_id().unwrap_or_default(), "SES accepted a mail");
        Ok(())
    }
}

/// The transport the configuration names: SES (from the environment's AWS configuration), SMTP or
/// the file outbox.
pub async fn transport_for(config: &MailTransport) -> Result<Arc<dyn Transport>> {
    match config {
        MailTransport::Ses { configuration_set } => {
            Ok(Arc::new(SesTransport::from_env(configuration_set.clone()).await))
        }
        other => TemplateMailer::transport_for(other),
    }
}
