//! Approver sign-in (OpenID Connect): what is kept between the redirect to the identity provider
//! and its callback, the session that follows, and the two ports behind them. The domain makes the
//! `state`, `nonce` and PKCE verifier and checks expiry in code; adapters store and talk.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::token::TokenHash;

/// A sign-in under way, stored under the SHA-256 of its `state`, so that any instance can finish it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub nonce: String,
    pub pkce_verifier: String,
    /// What the sign-in is for, and so where it returns and which session it opens.
    pub purpose: SignInPurpose,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn").field("purpose", &self.purpose).field("expires_at", &self.expires_at).finish()
    }
}

/// What a sign-in is for. Each purpose opens its own kind of session: an approver's session never
/// opens the audit page, and an auditor's never decides an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum SignInPurpose {
    /// Deciding through an approval link, kept as the SHA-256 of its token: the token itself
    /// never travels to the identity provider and is never stored. The browser returns with the
    /// link in a cookie, which must hash to this.
    Approval { link: TokenHash },
    /// Opening the audit page (DESIGN.md "Audit evidence"): `browser` is the SHA-256 of the
    /// random value the starting browser got as a cookie, so that only that browser can finish it.
    AuditPage { browser: String },
}

/// Who signed in, as the identity provider vouched for it: a verified e-mail address, the issuer,
/// the subject and how they authenticated (`amr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    #[serde(default)]
    pub amr: Vec<String>,
}

impl VerifiedIdentity {
    /// How the history and the mails name the proof: `signed in at ISSUER as SUB (amr: pwd, otp)`.
    pub fn describe(&self) -> String {
        let amr = if self.amr.is_empty() { "none given".to_string() } else { self.amr.join(", ") };
        format!("signed in at {} as {} ({}; amr: {amr})", self.issuer, self.subject, self.email)
    }
}

/// A signed-in approver's session, stored under the SHA-256 of its cookie's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverSession {
    pub identity: VerifiedIdentity,
    pub expires_at: Timestamp,
}

/// Where sign-ins and sessions are kept (the store: a SQLite table, or DynamoDB items with a TTL).
/// Keys are SHA-256 hex digests; expiry is checked by the caller, never left to TTL deletion.
#[async_trait]
pub trait SignIns: Send + Sync {
    async fn begin_sign_in(&self, state_hash: &str, pending: &PendingSignIn) -> Result<()>;
    /// Takes the sign-in: it is deleted, so a replayed callback finds nothing (conditional delete).
    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>>;
    async fn put_session(&self, id_hash: &str, session: &ApproverSession) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<ApproverSession>>;
}

/// The OpenID provider approvers sign in with (authorization code flow with PKCE S256, scopes
/// `openid email`, discovery from the issuer).
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    fn issuer(&self) -> &str;
    /// Where to send the browser.
    async fn authorize_url(&self, redirect_uri: &str, state: &str, nonce: &str, pkce_challenge: &str)
    -> Result<String>;
    /// Redeems `code` and verifies the ID token (signature against the provider's keys, `iss`,
    /// `aud`, `exp`, `nonce`, a verified `email`). A token that fails is `Error::Forbidden`.
    async fn redeem(
        &self,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity>;
}
