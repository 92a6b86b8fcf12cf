//! SMTP as a mail transport (`GATEHOUSE_MAIL_TRANSPORT=smtp`; settings in
//! `domain::config::SmtpSettings`): STARTTLS or implicit TLS with the relay's certificate verified,
//! AUTH with the configured credentials.

use async_trait::async_trait;
use domain::config::{SmtpSettings, SmtpTls};
use domain::{Error, Result};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::Transport;

/// An SMTP relay, through lettre. Each mail opens its own connection (lettre's pool is not
/// built), so a relay that was down is simply tried again on the next attempt.
pub struct Smtp(AsyncSmtpTransport<Tokio1Executor>);

impl Smtp {
    /// The relay the settings name: TLS verified against the public roots plus the CA file, if
    /// any; the credentials offered with AUTH PLAIN or LOGIN. The configuration already refused
    /// any way of sending mail unencrypted to a relay not on this machine.
    pub fn new(settings: &SmtpSettings) -> Result<Self> {
        let tls = match settings.tls {
            SmtpTls::StartTls => Tls::Required(tls_parameters(settings)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(settings)?),
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_parameters(settings)?),
            SmtpTls::None => Tls::None,
        };
        // `builder_dangerous` only means "no TLS chosen yet": it is chosen just above.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(15)));
        if let Some(c) = &settings.credentials {
            builder = builder.credentials(Credentials::new(c.user.clone(), c.password.expose().to_string()));
        }
        if let Some(name) = &settings.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        Ok(Self(builder.build()))
    }
}

/// The relay's certificate must name `settings.host` and chain to a public root or to a CA of
/// `GATEHOUSE_SMTP_CA_FILE`.
fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let setting = format!("GATEHOUSE_SMTP_CA_FILE ({})", path.display());
        let pem = std::fs::read(path).map_err(|e| Error::internal(format!("{setting} cannot be read"), e))?;
        // lettre reads an empty or certificate-less PEM as no certificates at all, without an error.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::internal_msg(format!("{setting} holds no PEM certificate")));
        }
        let ca = Certificate::from_pem(&pem)
            .map_err(|e| Error::internal(format!("{setting} is not a valid PEM certificate file"), e))?;
        builder = builder.add_root_certificate(ca);
    }
    builder.build_rustls().map_err(|e| Error::internal("setting up TLS for the SMTP relay failed", e))
}

/// The first I/O error under `e`: how the connection failed, when it did.
fn io_kind(e: &lettre::transport::smtp::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}

/// What a failed send tells the user (stored as the message's last error, so written by us; the
/// relay's own words go to the log through the error's source).
fn failure(e: &lettre::transport::smtp::Error) -> String {
    use std::io::ErrorKind as Io;
    if let Some(code) = e.status() {
        let code = code.to_string();
        // 530, 534, 535, 538: authentication required, too weak or refused (RFC 4954, section 6).
        return match (e.is_permanent(), code.starts_with("53")) {
            (true, true) => format!("refused to authenticate Gatehouse ({code})"),
            (true, false) => format!("refused the mail ({code})"),
            (false, _) => format!("deferred the mail ({code})"),
        };
    }
    match io_kind(e) {
        // tokio-rustls reports a failed handshake (an untrusted certificate, another host's
        // name) as InvalidData.
        Some(Io::InvalidData) => {
            "the TLS handshake failed (is the relay's certificate trusted, and does it name the host?)".into()
        }
        Some(Io::TimedOut) => "did not answer in time".into(),
        Some(Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof) => {
            "broke off the conversation".into()
        }
        _ if e.is_tls() => "TLS could not be set up".into(),
        _ => "could not be reached".into(),
    }
}

#[async_trait]
impl Transport for Smtp {
    async fn deliver(&self, message: Message) -> Result<()> {
        self.0.send(message).await.map(|_| ()).map_err(|e| Error::upstream_caused("SMTP relay", failure(&e), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ca_file: &std::path::Path) -> SmtpSettings {
        SmtpSettings {
            host: "relay.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            credentials: None,
            ca_file: Some(ca_file.to_path_buf()),
            hello_name: None,
        }
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_stops_start_up_naming_the_setting() {
        let dir = std::env::temp_dir().join(format!("gatehouse-smtp-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [dir.join("missing.pem"), empty] {
            let Err(err) = Smtp::new(&settings(&path)) else { panic!("{} was accepted", path.display()) };
            assert!(err.to_string().contains("GATEHOUSE_SMTP_CA_FILE"), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
