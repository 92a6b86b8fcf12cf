//! Approver sign-in (DESIGN.md, "Approver sign-in"): the approval page's Sign in button starts an
//! OpenID Connect authorization (code + PKCE S256), the callback finishes it on any instance, and
//! the decision POST then needs a session whose verified e-mail is the link's approver.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Services;
use crate::config::ApproverProof;
use crate::error::{Error, Result};
use crate::signin::{ApproverSession, PendingSignIn};
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

/// A finished sign-in: the session cookie's value and the approval link to go back to.
pub struct SignedIn {
    pub session_id: String,
    pub link: ApprovalToken,
}

impl Services {
    /// The callback URL registered with the identity provider.
    pub fn sign_in_callback_url(&self) -> String {
        format!("{}/v1/auth/callback", self.config.public_base_url)
    }

    /// Starts a sign-in for the approval link `token`. Only the link's hash goes into the store, and
    /// nothing of it to the identity provider.
    pub async fn start_sign_in(&self, token: &str) -> Result<SignInStart> {
        let Some(idp) = &self.identity else {
            return Err(Error::NotFound("sign-in (approvers decide with the link alone here)".into()));
        };
        let link = ApprovalToken::parse(token).ok_or_else(|| Error::NotFound("approval link".into()))?;
        self.store.token(&link.hash()).await?.ok_or_else(|| Error::NotFound("approval link".into()))?;
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let pending = PendingSignIn {
            nonce: nonce.clone(),
            pkce_verifier: verifier,
            link: link.hash(),
            expires_at: Timestamp::now() + SIGN_IN_TTL,
        };
        self.store.begin_sign_in(&digest(&state), &pending).await?;
        let authorize_url = idp.authorize_url(&self.sign_in_callback_url(), &state, &nonce, &challenge).await?;
        Ok(SignInStart { authorize_url })
    }

    /// Finishes a sign-in: the `state` is taken once, the link the browser returns with must be the
    /// one the sign-in started from, and the ID token must verify. Answers a new session.
    pub async fn finish_sign_in(&self, state: &str, code: &str, link: &str) -> Result<SignedIn> {
        let Some(idp) = &self.identity else { return Err(Error::NotFound("sign-in".into())) };
        let refused =
            |why: &str| Error::Forbidden(format!("the sign-in could not be completed: {why}; start it again"));
        let pending = self.store.take_sign_in(&digest(state)).await?.ok_or_else(|| refused("unknown or used state"))?;
        if Timestamp::now() >= pending.expires_at {
            return Err(refused("it took too long"));
        }
        let link = ApprovalToken::parse(link).filter(|l| l.hash() == pending.link).ok_or_else(|| {
            refused("this browser did not start it (open the approval link again in the same browser)")
        })?;
        let identity = idp.redeem(&self.sign_in_callback_url(), code, &pending.pkce_verifier, &pending.nonce).await?;
        let session_id = random();
        let ttl = SignedDuration::try_from(SESSION_TTL).map_err(|e| Error::internal("session ttl", e))?;
        let session = ApproverSession { identity, expires_at: Timestamp::now() + ttl };
        self.store.put_session(&digest(&session_id), &session).await?;
        tracing::info!(issuer = %session.identity.issuer, subject = %session.identity.subject, "approver signed in");
        Ok(SignedIn { session_id, link })
    }

    /// The live session behind a cookie's value, if any.
    pub async fn session(&self, session_id: &str) -> Result<Option<ApproverSession>> {
        if session_id.is_empty() || session_id.len() > 100 {
            return Ok(None);
        }
        Ok(self.store.session(&digest(session_id)).await?.filter(|s| Timestamp::now() < s.expires_at))
    }

    /// Whether deciding needs a sign-in here.
    pub fn sign_in_required(&self) -> bool {
        matches!(self.config.approver_proof, ApproverProof::SignIn(_))
    }
}
