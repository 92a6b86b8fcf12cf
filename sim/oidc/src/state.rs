//! What a running simulator holds: its signing key, the registered clients and users, and what
//! sign-ins leave behind (pending sign-in forms, codes, access tokens) until they expire; and the
//! claims of the ID tokens it signs.

use super::*;

/// How long a pending sign-in (the form shown by `GET /authorize`) stays usable.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an access token answers at `/userinfo`.
pub(crate) const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(300);

pub(crate) struct SigningKey {
    pub(crate) encoding: EncodingKey,
    pub(crate) kid: String,
    pub(crate) jwk: Value,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<SigningKey, String> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| "generating the P-256 key failed".to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| format!("reading the P-256 key: {e}"))?;
        // X9.62 uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err("unexpected public key encoding".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(SigningKey { encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), kid, jwk })
    }
}

pub(crate) struct SimState {
    pub(crate) base: String,
    pub(crate) issuer: String,
    pub(crate) code_ttl: Duration,
    pub(crate) id_token_ttl: Duration,
    pub(crate) key: SigningKey,
    pub(crate) data: Mutex<Data>,
}

impl SimState {
    pub(crate) fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Data {
    pub(crate) clients: Vec<OidcClient>,
    pub(crate) users: Vec<OidcUser>,
    /// Sign-in forms shown, by the `request` hidden field.
    pub(crate) pending: HashMap<String, Pending>,
    pub(crate) codes: HashMap<String, IssuedCode>,
    pub(crate) access_tokens: HashMap<String, (String, Instant)>,
}

impl Data {
    pub(crate) fn client(&self, client_id: &str) -> Option<&OidcClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub(crate) fn user(&self, email: &str) -> Option<&OidcUser> {
        let email = email.trim();
        self.users.iter().find(|u| u.email.eq_ignore_ascii_case(email))
    }

    pub(crate) fn upsert_user(&mut self, user: OidcUser) {
        self.users.retain(|u| !u.email.eq_ignore_ascii_case(&user.email));
        self.users.push(user);
    }

    pub(crate) fn purge(&mut self, now: Instant) {
        self.pending.retain(|_, p| now.duration_since(p.created) < PENDING_TTL);
        self.codes.retain(|_, c| c.expires > now);
        self.access_tokens.retain(|_, (_, expires)| *expires > now);
    }
}

#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) login_hint: Option<String>,
    pub(crate) created: Instant,
}

pub(crate) struct IssuedCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) email: String,
    pub(crate) auth_time: u64,
    pub(crate) expires: Instant,
}

#[derive(Serialize)]
pub(crate) struct IdTokenClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    pub(crate) auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<&'a str>,
    pub(crate) email: &'a str,
    pub(crate) email_verified: bool,
    pub(crate) name: &'a str,
    pub(crate) amr: [&'static str; 1],
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}
