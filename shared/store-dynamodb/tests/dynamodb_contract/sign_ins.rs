//! Approver sign-ins and sessions: their items, and their failures as upstream errors.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::Error;
use domain::token::ApprovalToken;
use gatehouse_store_dynamodb::{DynamoStore, TTL_ATTRIBUTE};
use jiff::Timestamp;

use super::{client, endpoint, fresh_store, raw_item};

#[tokio::test]
async fn sign_ins_and_sessions_are_items_with_a_ttl_a_day_past_expiry() {
    use domain::signin::{ApproverSession, PendingSignIn, SignIns, VerifiedIdentity};

    let store = fresh_store().await;
    let expires_at: Timestamp = "2026-03-01T12:00:00.5Z".parse().unwrap();
    let ttl = AttributeValue::N((expires_at.as_second() + 24 * 3600).to_string());
    let state = "ab".repeat(32);
    let pending = PendingSignIn {
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        purpose: domain::signin::SignInPurpose::Approval { link: ApprovalToken::generate().hash() },
        expires_at,
    };
    store.begin_sign_in(&state, &pending).await.unwrap();
    let item = raw_item(&store, format!("AUTH#{state}")).await.unwrap();
    assert_eq!(item.get("type"), Some(&AttributeValue::S("sign_in".into())));
    assert_eq!(item.get("expires_at"), Some(&AttributeValue::S("2026-03-01T12:00:00.500000000Z".into())));
    assert_eq!(item.get(TTL_ATTRIBUTE), Some(&ttl));
    assert!(store.take_sign_in(&state).await.unwrap() == Some(pending));
    assert_eq!(raw_item(&store, format!("AUTH#{state}")).await, None, "taking deletes the item");

    let id = "cd".repeat(32);
    let session = ApproverSession {
        identity: VerifiedIdentity {
            issuer: "https://id.example.com".into(),
            subject: "248289761001".into(),
            email: "ops@example.com".into(),
            amr: vec!["pwd".into()],
        },
        expires_at,
    };
    store.put_session(&id, &session).await.unwrap();
    let item = raw_item(&store, format!("SES#{id}")).await.unwrap();
    assert_eq!(item.get("type"), Some(&AttributeValue::S("session".into())));
    assert_eq!(item.get(TTL_ATTRIBUTE), Some(&ttl));
    assert_eq!(store.session(&id).await.unwrap(), Some(session));
}

#[tokio::test]
async fn sign_in_failures_are_upstream_errors_naming_the_operation() {
    use domain::signin::{ApproverSession, SignIns, VerifiedIdentity};

    let session = ApproverSession {
        identity: VerifiedIdentity {
            issuer: "https://id.example.com".into(),
            subject: "s".into(),
            email: "ops@example.com".into(),
            amr: vec![],
        },
        expires_at: Timestamp::now(),
    };
    let store = DynamoStore::new(client(&endpoint()), format!("gatehouse-missing-{}", uuid::Uuid::new_v4().simple()));
    for (operation, err) in [
        ("DeleteItem", store.take_sign_in("ab").await.unwrap_err()),
        ("GetItem", store.session("ab").await.unwrap_err()),
        ("TransactWriteItems", store.put_session("ab", &session).await.unwrap_err()),
    ] {
        assert!(matches!(&err, Error::Upstream { detail, .. } if detail == &format!("{operation} failed")), "{err:?}");
    }
}
