//! Approver sign-in (DESIGN.md, "Approver sign-in"), through HTTP against `gatehouse serve` and a
//! real, certified OpenID provider (node-oidc-provider, started by tests/run.sh with
//! tests/oidc/start-provider.sh, which exports OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET);
//! and once against the demo's OpenID provider simulator.

mod support;

#[path = "../oidc/signin.rs"]
mod signin;

use domain::config::{ApproverProof, OidcSettings, Secret};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};
use signin::{no_redirects, set_cookie, sign_in_at_real_provider};
use support::{Harness, intake_body, links, page_of, real_provider, sys_id};

const APPROVER: &str = "approver@demo.invalid";
const SECOND: &str = "second@demo.invalid";
const PASSWORD: &str = "demo";

async fn decide(h: &Harness, page: &str, session: Option<&str>) -> (u16, Value) {
    let mut req = h.http.post(page).header("accept", "application/json").json(&json!({"decision": "approve"}));
    if let Some(s) = session {
        req = req.header(COOKIE, format!("gatehouse_session={s}"));
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// A pending request and the approver's page (the link without `?decision=`).
async fn pending(h: &Harness, approver: &str, n: usize) -> (String, String) {
    let (status, body) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{body}");
    let mails = h.wait_mails_to(approver, n).await;
    let id = body["id"].as_str().unwrap().to_string();
    let mail = mails.iter().find(|m| m.text.contains(&id)).unwrap();
    (id, page_of(&links(mail).0))
}

/// Signs in for `page` as `email` at the provider, through `sign_in` (the provider's form flow),
/// and answers the session cookie Gatehouse set.
async fn sign_in_for<F, Fut>(page: &str, email: &str, sign_in: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let http = no_redirects();
    let token = page.rsplit('/').next().unwrap().to_string();
    let start = http.get(format!("{page}/sign-in")).send().await.unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let (link, attrs) = set_cookie(&start, "gatehouse_link").expect("the link's cookie");
    assert_eq!(link, token);
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax") && attrs.contains("Path=/v1/auth/callback"));
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(!authorize.contains(&token), "the link's token never travels to the identity provider");
    let callback = sign_in(authorize).await;
    assert!(callback.contains("/v1/auth/callback?"), "{callback} ({email})");
    let back = http.get(&callback).header(COOKIE, format!("gatehouse_link={link}")).send().await.unwrap();
    assert_eq!(back.status(), 303, "{}", back.text().await.unwrap());
    assert_eq!(back.headers()[LOCATION].to_str().unwrap(), format!("/v1/approvals/{token}"));
    let (session, attrs) = set_cookie(&back, "gatehouse_session").expect("a session cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax") && attrs.contains("Max-Age=900"), "{attrs}");
    assert!(!attrs.contains("Secure"), "plain http on loopback: no Secure attribute");
    // The callback works once.
    let again = http.get(&callback).header(COOKIE, format!("gatehouse_link={link}")).send().await.unwrap();
    assert_eq!(again.status(), 403);
    session
}

#[tokio::test]
async fn with_sign_in_only_the_links_approver_signed_in_decides_and_the_history_says_how() {
    let oidc = real_provider();
    let issuer = oidc.issuer.clone();
    let h = Harness::start_with(|c| {
        c.approver_proof = ApproverProof::SignIn(oidc);
        c.approvers.default = vec![APPROVER.into(), SECOND.into()];
    })
    .await;
    let idp = no_redirects();
    let (id, page) = pending(&h, APPROVER, 1).await;

    // Holding the link is not enough.
    let (status, answer) = decide(&h, &page, None).await;
    assert_eq!((status, answer["link"].as_str()), (403, Some("sign_in_required")), "{answer}");
    let html = h.http.post(&page).form(&[("decision", "approve")]).send().await.unwrap();
    assert_eq!(html.status(), 403);
    let text = html.text().await.unwrap();
    assert!(text.contains(&format!("sign in as {APPROVER}")) && text.contains("/sign-in"), "{text}");
    assert_eq!(h.request(&id).await["status"], "pending_approval");

    // Someone else signed in, with the approver's link: refused.
    let other =
        sign_in_for(&page, SECOND, |url| async move { sign_in_at_real_provider(&idp, &url, SECOND, PASSWORD).await })
            .await;
    let (status, answer) = decide(&h, &page, Some(&other)).await;
    assert_eq!((status, answer["link"].as_str()), (403, Some("not_the_approver")), "{answer}");
    assert_eq!(h.request(&id).await["status"], "pending_approval");

    // The approver signs in and decides.
    let idp = no_redirects();
    let session =
        sign_in_for(
            &page,
            APPROVER,
            |url| async move { sign_in_at_real_provider(&idp, &url, APPROVER, PASSWORD).await },
        )
        .await;
    let page_html = h.http.get(&page).header(COOKIE, format!("gatehouse_session={session}")).send().await.unwrap();
    assert!(page_html.text().await.unwrap().contains(&format!("Signed in as {APPROVER}")));
    let (status, answer) = decide(&h, &page, Some(&session)).await;
    assert_eq!(status, 200, "{answer}");
    let request = h.request(&id).await;
    assert_ne!(request["status"], "pending_approval", "approved (and provisioning already)");
    let decision = request["history"].as_array().unwrap().iter().find(|e| e["to"] == "approved").unwrap().clone();
    let proof = decision["proof"].as_str().unwrap();
    assert!(proof.contains(&issuer) && proof.contains(&oidc_sim::stable_sub(APPROVER)), "{proof}");
    assert!(proof.contains("amr"), "{proof}");
    // The requester's mail says how the approver proved who they are.
    let mail =
        h.wait_mails_to("ada@example.com", 2).await.into_iter().find(|m| m.subject.starts_with("Approved")).unwrap();
    assert!(mail.text.contains(&issuer), "{}", mail.text);
}

/// An approver away (DESIGN.md's delegations): their delegate gets a link of their own, signs in
/// as themselves, and the history says for whom they decided and how they proved who they are.
#[tokio::test]
async fn a_delegate_signs_in_as_themselves_and_the_history_says_for_whom_they_decided() {
    let oidc = real_provider();
    let issuer = oidc.issuer.clone();
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let policy = format!(
        "groups:\n  platform: [{APPROVER}]\nrules:\n  - name: default\n    stages: [{{group: platform, quorum: 1}}]\n\
         delegations:\n  - {{from: {APPROVER}, to: {SECOND}, start: {today}, end: {today}}}\n"
    );
    let policy = std::sync::Arc::new(domain::approvals::ApprovalPolicy::parse(&policy).unwrap());
    let h = Harness::start_with(|c| {
        c.approver_proof = ApproverProof::SignIn(oidc);
        c.approval_policy = Some(policy);
    })
    .await;
    let (id, page) = pending(&h, SECOND, 1).await;
    let mail = h.mails_to(SECOND).into_iter().next().unwrap();
    assert!(mail.text.contains(&format!("delegate of {APPROVER}")), "{}", mail.text);
    let idp = no_redirects();
    let session =
        sign_in_for(&page, SECOND, |url| async move { sign_in_at_real_provider(&idp, &url, SECOND, PASSWORD).await })
            .await;
    let (status, answer) = decide(&h, &page, Some(&session)).await;
    assert_eq!(status, 200, "{answer}");
    let request = h.request(&id).await;
    let decision = request["history"].as_array().unwrap().iter().find(|e| e["to"] == "approved").unwrap().clone();
    assert_eq!(decision["actor"], SECOND);
    assert!(decision["note"].as_str().unwrap().contains(&format!("for {APPROVER}")), "{decision}");
    let proof = decision["proof"].as_str().unwrap();
    assert!(proof.contains(&issuer) && proof.contains(&oidc_sim::stable_sub(SECOND)), "{proof}");
    let approval = &request["approval"]["stages"][0]["approvals"][0];
    assert_eq!((approval["approver"].as_str(), approval["delegate"].as_str()), (Some(APPROVER), Some(SECOND)));
}

#[tokio::test]
async fn a_sign_in_started_for_another_link_or_replayed_gets_nothing() {
    let h = Harness::start_with(|c| c.approver_proof = ApproverProof::SignIn(real_provider())).await;
    let (_, page) = pending(&h, APPROVER, 1).await;
    let http = no_redirects();
    let start = http.get(format!("{page}/sign-in")).send().await.unwrap();
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_string();
    let callback = sign_in_at_real_provider(&no_redirects(), &authorize, APPROVER, PASSWORD).await;
    // Without the browser's link cookie (another browser): refused, and no session.
    let back = http.get(&callback).send().await.unwrap();
    assert_eq!(back.status(), 403);
    assert!(set_cookie(&back, "gatehouse_session").is_none());
    // An unknown state: refused.
    let forged = http.get(h.url("/v1/auth/callback?code=x&state=forged")).send().await.unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn the_demo_signs_approvers_in_with_its_openid_provider_simulator() {
    let sim = oidc_sim::OidcSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
    let issuer = sim.issuer();
    let h = Harness::start_with(|c| {
        sim.add_redirect_uri(oidc_sim::demo::CLIENT_ID, &format!("{}/v1/auth/callback", c.public_base_url));
        c.approver_proof = ApproverProof::SignIn(OidcSettings {
            issuer: issuer.clone(),
            client_id: oidc_sim::demo::CLIENT_ID.into(),
            client_secret: Secret::new(oidc_sim::demo::CLIENT_SECRET),
        });
    })
    .await;
    let (id, page) = pending(&h, APPROVER, 1).await;
    assert_eq!(decide(&h, &page, None).await.0, 403);
    let session = sign_in_for(&page, APPROVER, |url| async move {
        oidc_sim::try_sign_in(&url, APPROVER, oidc_sim::demo::PASSWORD).await.unwrap()
    })
    .await;
    assert_eq!(decide(&h, &page, Some(&session)).await.0, 200);
    let history = h.request(&id).await["history"].to_string();
    assert!(history.contains(&issuer), "{history}");
}
