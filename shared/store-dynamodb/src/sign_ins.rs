//! Approver sign-ins and sessions (`domain::signin::SignIns`) as items of the one table:
//!
//! | item             | pk                  | sk     | other attributes                                         |
//! |------------------|---------------------|--------|----------------------------------------------------------|
//! | pending sign-in  | `AUTH#{state_hash}` | `META` | `type = sign_in`, `data` (the `PendingSignIn` as JSON), `expires_at`, `ttl` |
//! | approver session | `SES#{id_hash}`     | `META` | `type = session`, `data` (the `ApproverSession` as JSON), `expires_at`, `ttl` |
//!
//! `ttl` (N, epoch seconds) is the expiry plus one day, so DynamoDB deletes the items eventually;
//! expiry itself is checked by the caller, never left to TTL deletion (which may lag for days).
//! Both items are written once: a key that exists is `Error::Conflict`, never overwritten.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use domain::signin::{ApproverSession, PendingSignIn, SignIns};
use domain::{Error, Result};
use jiff::{SignedDuration, Timestamp};

use crate::{
    CONDITION_FAILED, CONFLICT, DynamoStore, Item, TTL_ATTRIBUTE, cancellation_codes, decode_data, json, key, s,
};

/// How long past its expiry a sign-in or session item stays before TTL may delete it.
const SIGN_IN_RETENTION: SignedDuration = SignedDuration::from_hours(24);

fn sign_in_pk(state_hash: &str) -> String {
    format!("AUTH#{state_hash}")
}

fn session_pk(id_hash: &str) -> String {
    format!("SES#{id_hash}")
}

/// An item with its key, `type`, `data`, `expires_at` and `ttl`.
fn item<T: serde::Serialize>(pk: String, kind: &str, body: &T, expires_at: Timestamp) -> Result<Item> {
    let purge_after = expires_at
        .checked_add(SIGN_IN_RETENTION)
        .map_err(|e| Error::internal(format!("DynamoDB store: {kind} expiry out of range"), e))?;
    let mut item = key(pk, "META".into());
    item.insert("type".into(), s(kind));
    item.insert("data".into(), s(json(body)?));
    item.insert("expires_at".into(), s(crate::sortable(expires_at)));
    item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(purge_after.as_second().to_string()));
    Ok(item)
}

impl DynamoStore {
    /// Writes `item` only where its key is free (`attribute_not_exists(pk)`), in a one-item
    /// transaction so that its `ClientRequestToken` makes an SDK retry of a write that already
    /// committed succeed instead of losing its own condition.
    async fn insert(&self, item: Item, what: &str) -> Result<()> {
        let err = match self.transact(vec![self.put_new(item)?]).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        match cancellation_codes(&err) {
            Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED || c == CONFLICT) => {
                Err(Error::Conflict(format!("{what} with this key already exists")))
            }
            _ => Err(self.upstream("TransactWriteItems", err)),
        }
    }
}

#[async_trait]
impl SignIns for DynamoStore {
    async fn begin_sign_in(&self, state_hash: &str, pending: &PendingSignIn) -> Result<()> {
        self.insert(item(sign_in_pk(state_hash), "sign_in", pending, pending.expires_at)?, "a sign-in").await
    }

    async fn take_sign_in(&self, state_hash: &str) -> Result<Option<PendingSignIn>> {
        // One DeleteItem returning what it deleted (ReturnValues ALL_OLD: "the item attributes as
        // they appeared before they were deleted", DynamoDB API Reference, DeleteItem). A single
        // write is atomic and works on the item's latest version whatever runs concurrently
        // (Developer Guide, "Best practices for handling concurrent updates"), so of two callbacks
        // with the same state one gets the item and the other finds nothing. Should the SDK retry
        // a delete that already committed, the retry finds nothing too: the sign-in fails and is
        // started again, it is never handed out twice.
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(sign_in_pk(state_hash), "META".into())))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.upstream("DeleteItem", e))?;
        match out.attributes {
            Some(old) if !old.is_empty() => decode_data(&old, "sign-in").map(Some),
            _ => Ok(None),
        }
    }

    async fn put_session(&self, id_hash: &str, session: &ApproverSession) -> Result<()> {
        self.insert(item(session_pk(id_hash), "session", session, session.expires_at)?, "a session").await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<ApproverSession>> {
        // `get_item` reads strongly consistent: a session written a moment ago on another
        // instance is found.
        self.get_item(session_pk(id_hash)).await?.map(|item| decode_data(&item, "session")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use domain::signin::VerifiedIdentity;
    use domain::token::TokenHash;

    use super::*;
    use crate::string;

    #[test]
    fn items_carry_their_expiry_and_a_ttl_one_day_past_it() {
        let expires_at: Timestamp = "2026-03-01T12:00:00.25Z".parse().unwrap();
        let pending = PendingSignIn {
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            purpose: domain::signin::SignInPurpose::Approval { link: TokenHash::from_stored("ab".repeat(32)) },
            expires_at,
        };
        let it = item(sign_in_pk("cd"), "sign_in", &pending, expires_at).unwrap();
        assert_eq!(it.get("pk"), Some(&s("AUTH#cd")));
        assert_eq!(it.get("sk"), Some(&s("META")));
        assert_eq!(it.get("type"), Some(&s("sign_in")));
        assert_eq!(string(&it, "expires_at", "t").unwrap(), "2026-03-01T12:00:00.250000000Z");
        let ttl = (expires_at.as_second() + 24 * 3600).to_string();
        assert_eq!(it.get(TTL_ATTRIBUTE), Some(&AttributeValue::N(ttl)));
        assert!(decode_data::<PendingSignIn>(&it, "sign-in").unwrap() == pending);

        let session = ApproverSession {
            identity: VerifiedIdentity {
                issuer: "https://id.example.com".into(),
                subject: "s".into(),
                email: "ops@example.com".into(),
                amr: vec!["pwd".into()],
            },
            expires_at,
        };
        let it = item(session_pk("ef"), "session", &session, expires_at).unwrap();
        assert_eq!(it.get("pk"), Some(&s("SES#ef")));
        assert_eq!(decode_data::<ApproverSession>(&it, "session").unwrap(), session);
    }
}
