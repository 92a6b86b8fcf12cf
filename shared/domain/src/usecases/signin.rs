//! Sign-in (DESIGN.md, "Approver sign-in" and "Audit evidence"): a Sign in button starts an
//! OpenID Connect authorization (code + PKCE S256), the callback finishes it on any instance. For
//! an approval link, the decision POST then needs a session whose verified e-mail is the link's
//! approver; for the audit page, the verified e-mail must be one of `GATEHOUSE_AUDITORS`.
//!
//! The two kinds of session are kept apart: an auditor's is stored under another key than an
//! approver's, so the cookie of one never finds the other.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Services;
use crate::config::ApproverProof;
use crate::error::{Error, Result};
use crate::signin::{ApproverSession, PendingSignIn, SignInPurpose};
use crate::token::{ApprovalToken, hex};

/// How long a sign-in may take between the redirect and the callback.
const SIGN_IN_TTL: SignedDuration = SignedDuration::from_mins(10);
/// How long a session lasts (DESIGN.md: 15 minutes).
pub const SESSION_TTL: Duration = Duration::from_secs(15 * 60);

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// Where the browser goes to sign in, and the `state` the callback will carry.
pub struct SignInStart {
    pub authorize_url: String,
}

/// A started auditor sign-in: where to send the browser, and the value the browser keeps as a
/// cookie until the callback (only its hash is stored).
pub struct AuditSignInStart {
    pub authorize_url: String,
    pub browser: String,
}

/// What the browser brings back to the callback besides `code` and `state`: its cookies.
#[derive(Default)]
pub struct CallbackCookies<'a> {
    /// The approval link being signed in for.
    pub link: Option<&'a str>,
    /// The value an auditor sign-in gave this browser.
    pub audit_browser: Option<&'a str>,
}

/// A finished sign-in: a new session's cookie value, and where to return.
pub enum SignedIn {
    /// An approver's session, back to the approval link.
    Approver { session_id: String, link: ApprovalToken },
    /// An auditor's session, back to the audit page.
    Auditor { session_id: String, email: String },
}

/// The key an auditor's session is stored under: another namespace than approvers' sessions.
fn auditor_key(session_id: &str) -> String {
    digest(&format!("auditor-session:{session_id}"))
}

impl Services {
    /// The callback URL registered with the identity provider.
    pub fn sign_in_callback_url(&self) -> String {
        format!("{}/v1/auth/callback", self.config.public_base_url)
    }

    /// Stores a sign-in for `purpose` and answers where to send the browser.
    async fn begin(&self, purpose: SignInPurpose) -> Result<String> {
        let Some(idp) = &self.identity else { return Err(Error::NotFound("sign-in".into())) };
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let pending = PendingSignIn {
            nonce: nonce.clone(),
            pkce_verifier: verifier,
            purpose,
            expires_at: Timestamp::now() + SIGN_IN_TTL,
        };
        self.store.begin_sign_in(&digest(&state), &pending).await?;
        idp.authorize_url(&self.sign_in_callback_url(), &state, &nonce, &challenge).await
    }

    /// Starts a sign-in for the approval link `token`. Only the link's hash goes into the store, and
    /// nothing of it to the identity provider.
    pub async fn start_sign_in(&self, token: &str) -> Result<SignInStart> {
        if self.identity.is_none() {
            return Err(Error::NotFound("sign-in (approvers decide with the link alone here)".into()));
        }
        let link = ApprovalToken::parse(token).ok_or_else(|| Error::NotFound("approval link".into()))?;
        self.store.token(&link.hash()).await?.ok_or_else(|| Error::NotFound("approval link".into()))?;
        let authorize_url = self.begin(SignInPurpose::Approval { link: link.hash() }).await?;
        Ok(SignInStart { authorize_url })
    }

    /// Starts an auditor's sign-in for the audit page. Needs an identity provider and at least one
    /// address in `GATEHOUSE_AUDITORS`.
    pub async fn start_audit_sign_in(&self) -> Result<AuditSignInStart> {
        if self.identity.is_none() || self.config.auditors.is_empty() {
            return Err(Error::NotFound(
                "auditor sign-in (it needs GATEHOUSE_OIDC_ISSUER and GATEHOUSE_AUDITORS; use an audit token)".into(),
            ));
        }
        let browser = random();
        let authorize_url = self.begin(SignInPurpose::AuditPage { browser: digest(&browser) }).await?;
        Ok(AuditSignInStart { authorize_url, browser })
    }

    /// Finishes a sign-in: the `state` is taken once, the browser must be the one that started it
    /// (it returns with the approval link, or the audit page's value, in a cookie), and the ID
    /// token must verify. An auditor must be listed in `GATEHOUSE_AUDITORS`. Answers a new session.
    pub async fn finish_sign_in(&self, state: &str, code: &str, cookies: &CallbackCookies<'_>) -> Result<SignedIn> {
        let Some(idp) = &self.identity else { return Err(Error::NotFound("sign-in".into())) };
        let refused =
            |why: &str| Error::Forbidden(format!("the sign-in could not be completed: {why}; start it again"));
        let pending = self.store.take_sign_in(&digest(state)).await?.ok_or_else(|| refused("unknown or used state"))?;
        if Timestamp::now() >= pending.expires_at {
            return Err(refused("it took too long"));
        }
        let ttl = SignedDuration::try_from(SESSION_TTL).map_err(|e| Error::internal("session ttl", e))?;
        match pending.purpose {
            SignInPurpose::Approval { link: expected } => {
                let link =
                    cookies.link.and_then(ApprovalToken::parse).filter(|l| l.hash() == expected).ok_or_else(|| {
                        refused("this browser did not start it (open the approval link again in the same browser)")
                    })?;
                let identity =
                    idp.redeem(&self.sign_in_callback_url(), code, &pending.pkce_verifier, &pending.nonce).await?;
                let session_id = random();
                let session = ApproverSession { identity, expires_at: Timestamp::now() + ttl };
                self.store.put_session(&digest(&session_id), &session).await?;
                tracing::info!(issuer = %session.identity.issuer, subject = %session.identity.subject, "approver signed in");
                Ok(SignedIn::Approver { session_id, link })
            }
            SignInPurpose::AuditPage { browser } => {
                if cookies.audit_browser.map(digest) != Some(browser) {
                    return Err(refused(
                        "this browser did not start it (open the audit page again in the same browser)",
                    ));
                }
                let identity =
                    idp.redeem(&self.sign_in_callback_url(), code, &pending.pkce_verifier, &pending.nonce).await?;
                if !self.is_auditor(&identity.email) {
                    tracing::warn!(issuer = %identity.issuer, subject = %identity.subject, "sign-in refused: not an auditor");
                    return Err(Error::Forbidden(format!(
                        "{} signed in, but is not an auditor: only the addresses listed in GATEHOUSE_AUDITORS may \
                         open the audit page",
                        identity.email
                    )));
                }
                let session_id = random();
                let email = identity.email.clone();
                let session = ApproverSession { identity, expires_at: Timestamp::now() + ttl };
                self.store.put_session(&auditor_key(&session_id), &session).await?;
                tracing::info!(issuer = %session.identity.issuer, subject = %session.identity.subject, "auditor signed in");
                Ok(SignedIn::Auditor { session_id, email })
            }
        }
    }

    /// The live approver session behind a cookie's value, if any.
    pub async fn session(&self, session_id: &str) -> Result<Option<ApproverSession>> {
        if session_id.is_empty() || session_id.len() > 100 {
            return Ok(None);
        }
        Ok(self.store.session(&digest(session_id)).await?.filter(|s| Timestamp::now() < s.expires_at))
    }

    /// The live auditor session behind a cookie's value, if any, and only while its e-mail is still
    /// listed in `GATEHOUSE_AUDITORS` (removing an auditor ends their session at once).
    pub async fn auditor_session(&self, session_id: &str) -> Result<Option<ApproverSession>> {
        if session_id.is_empty() || session_id.len() > 100 {
            return Ok(None);
        }
        Ok(self
            .store
            .session(&auditor_key(session_id))
            .await?
            .filter(|s| Timestamp::now() < s.expires_at && self.is_auditor(&s.identity.email)))
    }

    /// Whether `email` is one of `GATEHOUSE_AUDITORS` (compared as mailboxes).
    pub fn is_auditor(&self, email: &str) -> bool {
        self.config.auditors.iter().any(|a| crate::identity::same_person(a, email))
    }

    /// Whether deciding needs a sign-in here.
    pub fn sign_in_required(&self) -> bool {
        matches!(self.config.approver_proof, ApproverProof::SignIn(_))
    }
}
