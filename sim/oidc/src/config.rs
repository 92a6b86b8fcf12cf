//! What a simulator is started with: its clients (relying parties) and users, each with a `Debug`
//! that hides the secret, and how long codes and ID tokens live. [`OidcSimConfig::default`] is the
//! demo's.

use super::*;

/// A registered client (relying party). Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// Compared exactly (no prefix or pattern matching), as OpenID Connect requires.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl OidcClient {
    pub fn new<I, S>(client_id: &str, client_secret: &str, redirect_uris: I) -> OidcClient
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        OidcClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// A user who can sign in. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcUser {
    /// Matched case-insensitively at sign-in; put in the ID token as given here.
    pub email: String,
    pub password: String,
    /// The `sub` claim: stable for the user ([`stable_sub`] by default).
    pub sub: String,
    pub name: String,
    /// The `email_verified` claim (true by default; false lets tests try an unverified address).
    pub email_verified: bool,
}

impl OidcUser {
    /// A user with a verified email and the [`stable_sub`] of that email.
    pub fn new(email: &str, password: &str, name: &str) -> OidcUser {
        OidcUser {
            email: email.into(),
            password: password.into(),
            sub: stable_sub(email),
            name: name.into(),
            email_verified: true,
        }
    }
}

impl fmt::Debug for OidcUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcUser")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// The default `sub` of a user: the same for an email (any case) in every run, and opaque
/// (`u-` and 24 hex digits of SHA-256 of the lower-cased email).
pub fn stable_sub(email: &str) -> String {
    let digest = Sha256::digest(format!("oidc-sim:{}", email.trim().to_lowercase()).as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("u-{hex}")
}

#[derive(Clone, Debug)]
pub struct OidcSimConfig {
    /// The issuer (no trailing slash); `None`: the base URL the simulator is bound to
    /// (`http://127.0.0.1:PORT`). Every endpoint is published below it.
    pub issuer: Option<String>,
    pub clients: Vec<OidcClient>,
    pub users: Vec<OidcUser>,
    /// How long an authorization code can be redeemed (60 s).
    pub code_ttl: Duration,
    /// `exp` - `iat` of ID tokens (5 min).
    pub id_token_ttl: Duration,
}

impl Default for OidcSimConfig {
    /// The demo: client `gatehouse` / `gatehouse-demo-secret` with no redirect URI yet (add it with
    /// [`OidcSim::add_redirect_uri`] once the relying party's address is known), and the users
    /// `approver@demo.invalid` and `second@demo.invalid`, password `demo`.
    fn default() -> Self {
        OidcSimConfig {
            issuer: None,
            clients: vec![OidcClient::new(demo::CLIENT_ID, demo::CLIENT_SECRET, Vec::<String>::new())],
            users: vec![
                OidcUser::new(demo::APPROVER_EMAIL, demo::PASSWORD, demo::APPROVER_NAME),
                OidcUser::new(demo::SECOND_EMAIL, demo::PASSWORD, demo::SECOND_NAME),
            ],
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(300),
        }
    }
}
