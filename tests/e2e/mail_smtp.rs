//! Mail through a real SMTP server (aiosmtpd, started by tests/run.sh with
//! tests/smtp/start-smtp.sh): STARTTLS with a private CA, then AUTH. Every mail template is sent by
//! `gatehouse serve` configured as a site would configure it, taken by the server, read back and
//! parsed as a mail client would; a relay that refuses (554) or is down leaves the mail owed, and
//! it goes out once the relay takes it (DESIGN.md, "Flow of a provisioning request"). A short lease
//! brings the lease reminder (its Extend link followed) and the retirement mail too.

mod support;

#[path = "../smtp/relay.rs"]
mod relay;

use std::collections::BTreeMap;
use std::time::Duration;

use domain::model::{MessageKind, OutboxMessage};
use jiff::{SignedDuration, Timestamp};
use mail_parser::Protocol;
use relay::{Delivered, Relay, bring_up, unused_port};
use serde_json::{Value, json};
use support::process::{ServeProcess, SimProcess};
use support::{Harness, intake_body, page_of, sys_id};

const FROM: &str = "gatehouse@example.com";

/// An approver and a requester of this test alone: the server's mail folder is shared.
fn people() -> (String, String) {
    // The random end of a UUIDv7 (its start is the time, shared by tests that start together).
    let id = sys_id();
    let tag = &id[id.len() - 12..];
    (format!("approver-{tag}@example.com"), format!("ada-{tag}@example.com"))
}

/// `gatehouse serve` in its configured mode, mailing through the relay; `extra` adds settings.
async fn serve(sim: &SimProcess, relay: &Relay, approver: &str, extra: &[(&str, &str)]) -> ServeProcess {
    let mut settings = relay.settings(relay.port);
    settings.push(("GATEHOUSE_APPROVERS".into(), approver.into()));
    settings.push(("GATEHOUSE_MAIL_FROM".into(), FROM.into()));
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServeProcess::start(sim, &refs).await
}

fn order(number: &str, requester: &str) -> Value {
    let mut body = intake_body(&sys_id());
    body["source"]["number"] = json!(number);
    body["requester"]["email"] = json!(requester);
    body
}

async fn submit(api: &support::Api, body: &Value) -> String {
    let (status, answer) = api.intake(body).await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

/// What every mail shows its reader, whatever its template: who it is from and to, a date and an
/// id, a text and an HTML part; and that it came over TLS, authenticated.
fn assert_well_formed(mail: &Delivered, to: &str) {
    assert_eq!(mail.from, [FROM], "{}", mail.subject);
    assert_eq!(mail.to, [to], "{}", mail.subject);
    assert!(mail.has_date && mail.message_id.is_some(), "{mail:?}");
    assert_eq!(mail.received_with, Some(Protocol::ESMTPSA), "STARTTLS and AUTH: {mail:?}");
    assert_eq!(mail.content_type, "multipart/alternative", "{}", mail.subject);
    assert!(!mail.text.is_empty() && mail.html.contains("</html>"), "{mail:?}");
    assert!(!mail.text.contains("</"), "the text part holds no markup: {}", mail.text);
}

/// The Approve and Deny links of an approver's mail: the same in both parts, on Gatehouse's
/// public address; the Approve page shows the request.
async fn approval_links(api: &support::Api, mail: &Delivered, number: &str) -> (String, String) {
    let approve = mail.text_link("Approve").unwrap_or_else(|| panic!("no Approve link: {}", mail.text));
    let deny = mail.text_link("Deny").unwrap_or_else(|| panic!("no Deny link: {}", mail.text));
    assert_eq!(mail.html_links(), [approve.clone(), deny.clone()], "the HTML buttons carry the same links");
    assert!(approve.starts_with(&format!("{}/v1/approvals/", api.base)) && approve.ends_with("?decision=approve"));
    assert_eq!(page_of(&approve), page_of(&deny));
    let page = api.http.get(&approve).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(number));
    (approve, deny)
}

async fn decide(api: &support::Api, link: &str, body: Value) {
    let resp = api.http.post(page_of(link)).header("accept", "application/json").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn every_mail_of_approving_denying_and_cancelling_arrives_through_the_relay() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let sim = SimProcess::start(200);
    let serve = serve(&sim, &relay, &approver, &[]).await;

    // Approved, then running.
    let id = submit(&serve, &order("RITM0030001", &requester)).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030001").await;
    assert_well_formed(&ask, &approver);
    assert_eq!(ask.subject, "Approval needed: RITM0030001 — 1 × m1.small on demo for Ada Lovelace");
    for line in
        ["Ada Lovelace asks for 1 VM on demo.", &id, "Server name: web-01", "Justification: Load test environment"]
    {
        assert!(ask.text.contains(line), "{line:?} missing: {}", ask.text);
    }
    assert!(
        ask.html.contains(
            "<th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">Cloud</th><td>demo</td>"
        )
    );
    let received = relay.wait_for(&requester, "Received: RITM0030001").await;
    assert_well_formed(&received, &requester);
    assert_eq!(received.subject, "Received: RITM0030001 waits for approval");
    assert!(received.text.contains("Your request RITM0030001 reached Gatehouse"), "{}", received.text);
    let (approve, _) = approval_links(&serve, &ask, "RITM0030001").await;
    decide(&serve, &approve, json!({"decision": "approve"})).await;
    let approved = relay.wait_for(&requester, "Approved: RITM0030001").await;
    assert_well_formed(&approved, &requester);
    assert!(approved.text.contains(&format!("was approved by {approver}")), "{}", approved.text);
    let r = serve.wait_status(&id, "active", Duration::from_secs(30)).await;
    let server = &r["servers"][0];
    let (address, server_id) = (server["addresses"][0].as_str().unwrap(), server["id"].as_str().unwrap());
    let ready = relay.wait_for(&requester, "Ready: RITM0030001").await;
    assert_well_formed(&ready, &requester);
    assert_eq!(ready.subject, "Ready: RITM0030001 — web-01 running");
    assert!(ready.text.contains(&format!("web-01 (id {server_id}): {address}")), "{}", ready.text);
    assert!(ready.html.contains(address), "{}", ready.html);

    // Denied with a comment, through the mail's Deny link.
    let id = submit(&serve, &order("RITM0030002", &requester)).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030002").await;
    let (_, deny) = approval_links(&serve, &ask, "RITM0030002").await;
    decide(&serve, &deny, json!({"decision": "deny", "comment": "Use the shared <pool> instead"})).await;
    let denied = relay.wait_for(&requester, "Denied: RITM0030002").await;
    assert_well_formed(&denied, &requester);
    assert!(denied.text.contains("Comment: Use the shared <pool> instead"), "{}", denied.text);
    assert!(denied.html.contains("Use the shared &lt;pool&gt; instead"), "escaped in HTML: {}", denied.html);
    assert_eq!(serve.request(&id).await["status"], "denied");

    // Cancelled while pending: the requester hears of it and the mailed links die.
    let id = submit(&serve, &order("RITM0030003", &requester)).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030003").await;
    let (approve, _) = approval_links(&serve, &ask, "RITM0030003").await;
    let resp = serve.post(&format!("/v1/requests/{id}/cancel")).json(&json!({"reason": "RITM cancelled"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
    let cancelled = relay.wait_for(&requester, "Cancelled: RITM0030003").await;
    assert_well_formed(&cancelled, &requester);
    assert!(cancelled.text.contains("its approval links no longer work"), "{}", cancelled.text);
    assert_eq!(serve.http.get(&approve).send().await.unwrap().status(), 410);

    // Each mail once: three asks; for the requester three, two and two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects = |to: &str| relay.delivered_to(to).into_iter().map(|m| m.subject).collect::<Vec<_>>();
    assert_eq!(subjects(&approver).len(), 3, "{:?}", subjects(&approver));
    assert_eq!(subjects(&requester).len(), 7, "{:?}", subjects(&requester));
}

#[tokio::test]
async fn the_reminder_and_the_expiry_arrive_through_the_relay() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let sim = SimProcess::start(200);
    let serve = serve(&sim, &relay, &approver, &[("GATEHOUSE_APPROVAL_TTL_SECS", "6")]).await;
    let id = submit(&serve, &order("RITM0030004", &requester)).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030004").await;
    let reminder = relay.wait_for(&approver, "Reminder: Approval needed: RITM0030004").await;
    assert_well_formed(&reminder, &approver);
    assert_eq!(reminder.subject, format!("Reminder: {}", ask.subject));
    let (approve, _) = approval_links(&serve, &reminder, "RITM0030004").await;
    assert_ne!(approve, ask.text_link("Approve").unwrap(), "the reminder carries a link of its own");
    let expired = relay.wait_for(&requester, "Expired: RITM0030004").await;
    assert_well_formed(&expired, &requester);
    assert_eq!(expired.subject, "Expired: RITM0030004 was not approved in time");
    assert!(expired.text.contains("It has expired; order again if you still need it."), "{}", expired.text);
    assert_eq!(serve.request(&id).await["status"], "expired");
    assert_eq!(serve.http.get(&approve).send().await.unwrap().status(), 410);
}

#[tokio::test]
async fn a_failed_provisioning_reaches_the_requester_and_the_approver_through_the_relay() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let sim = SimProcess::start(200);
    let serve = serve(&sim, &relay, &approver, &[]).await;
    sim.set_faults(json!({"server_error": "No valid host was found. There are not enough hosts available."})).await;
    let id = submit(&serve, &order("RITM0030005", &requester)).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030005").await;
    let (approve, _) = approval_links(&serve, &ask, "RITM0030005").await;
    decide(&serve, &approve, json!({"decision": "approve"})).await;
    serve.wait_status(&id, "failed", Duration::from_secs(30)).await;
    for to in [&requester, &approver] {
        let failed = relay.wait_for(to, "Failed: RITM0030005").await;
        assert_well_formed(&failed, to);
        assert_eq!(failed.subject, "Failed: RITM0030005 could not be provisioned");
        assert!(failed.text.contains("No valid host was found"), "{}", failed.text);
        assert!(failed.text.contains("The platform team has been told."), "{}", failed.text);
    }
}

/// The Extend link of a lease reminder: the same in both parts, on Gatehouse's public address.
fn extend_link(api: &support::Api, mail: &Delivered) -> String {
    let extend = mail.text_link("Extend").unwrap_or_else(|| panic!("no Extend link: {}", mail.text));
    assert_eq!(mail.html_links(), vec![extend.clone()], "the HTML button carries the same link");
    assert!(extend.starts_with(&format!("{}/v1/leases/", api.base)), "{extend}");
    extend
}

async fn lease_link(api: &support::Api, method: reqwest::Method, link: &str) -> (u16, Value) {
    let resp = api.http.request(method, link).header("accept", "application/json").send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_lease_reminder_and_the_retirement_arrive_through_the_relay() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let sim = SimProcess::start(200);
    // A lease of 6 s, its reminder 3 s before the end (both far shorter than a site's).
    let lease = [("GATEHOUSE_MIN_LEASE_SECS", "1"), ("GATEHOUSE_LEASE_REMINDERS", "3s")];
    let serve = serve(&sim, &relay, &approver, &lease).await;
    let mut body = order("RITM0030009", &requester);
    body["retire_at"] = json!((Timestamp::now() + SignedDuration::from_secs(6)).to_string());
    let id = submit(&serve, &body).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030009").await;
    let (approve, _) = approval_links(&serve, &ask, "RITM0030009").await;
    decide(&serve, &approve, json!({"decision": "approve"})).await;
    let r = serve.wait_status(&id, "active", Duration::from_secs(30)).await;
    let server_id = r["servers"][0]["id"].as_str().unwrap().to_string();
    let first_end: Timestamp = r["retire_at"].as_str().unwrap().parse().unwrap();

    let reminder = relay.wait_for(&requester, "Reminder: RITM0030009").await;
    assert_well_formed(&reminder, &requester);
    let minute = first_end.strftime("%Y-%m-%d %H:%M UTC").to_string();
    assert_eq!(reminder.subject, format!("Reminder: RITM0030009 — web-01 will be deleted at {minute}"));
    assert!(reminder.text.contains(&format!("ends at {minute}; then they are deleted")), "{}", reminder.text);
    assert!(reminder.text.contains(&format!("web-01 (id {server_id})")), "{}", reminder.text);
    assert!(reminder.html.contains(&server_id), "{}", reminder.html);
    let extend = extend_link(&serve, &reminder);

    // Looking (as a mail scanner would) changes nothing; the page offers the button.
    let page = serve.http.get(&extend).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<form method=\"post\">") && page.contains("Extend by"), "{page}");
    assert_eq!(lease_link(&serve, reqwest::Method::GET, &extend).await.1["link"], "open");
    assert_eq!(serve.request(&id).await["retire_at"], r["retire_at"]);
    // The button extends the lease by its length, once.
    let (status, extended) = lease_link(&serve, reqwest::Method::POST, &extend).await;
    assert_eq!((status, extended["extensions"].as_u64()), (200, Some(1)), "{extended}");
    let new_end: Timestamp = extended["retire_at"].as_str().unwrap().parse().unwrap();
    assert!(new_end >= first_end + SignedDuration::from_secs(6), "{first_end} -> {new_end}");
    assert_eq!(serve.request(&id).await["retire_at"], extended["retire_at"]);

    // At the new end the server is deleted and the requester told.
    let retired = relay.wait_for(&requester, "Retired: RITM0030009").await;
    assert_well_formed(&retired, &requester);
    assert_eq!(retired.subject, "Retired: RITM0030009 — web-01 deleted");
    assert!(retired.text.contains("The lease of your VMs for RITM0030009 on demo ended"), "{}", retired.text);
    assert!(retired.text.contains(&format!("web-01 (id {server_id})")), "{}", retired.text);
    assert!(retired.html_links().is_empty(), "nothing left to act on: {}", retired.html);
    let r = serve.wait_status(&id, "retired", Duration::from_secs(10)).await;
    let at = r["history"].as_array().unwrap().iter().find(|e| e["to"] == "retired").unwrap()["at"].clone();
    assert!(at.as_str().unwrap().parse::<Timestamp>().unwrap() >= new_end, "retired at {at}, before {new_end}");
    assert!(sim.servers().await.iter().all(|s| s["id"] != server_id.as_str()), "the server is deleted");
    assert_eq!(lease_link(&serve, reqwest::Method::GET, &extend).await.0, 410, "the link ended with the lease");
}

/// The mails `id` still owes (its transactional outbox), with their recipients.
async fn owed(h: &Harness, id: &str) -> Vec<(String, OutboxMessage)> {
    let id = domain::model::RequestId::parse(id).unwrap();
    let all = h.running.services.store.messages_of(&id).await.unwrap();
    all.into_iter()
        .filter_map(|m| match &m.kind {
            MessageKind::Mail(notice) => Some((notice.to.clone(), m.clone())),
            MessageKind::WorkNote(_) => None,
        })
        .collect()
}

/// Waits until the mail to `to` is owed after `attempts` failed attempts, and answers its last error.
async fn wait_owed(h: &Harness, id: &str, to: &str, attempts: u32) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let owed = owed(h, id).await;
        if let Some((_, m)) = owed.iter().find(|(t, m)| t == to && m.attempts >= attempts) {
            return m.last_error.clone().unwrap_or_default();
        }
        assert!(tokio::time::Instant::now() < deadline, "the mail to {to} never failed {attempts} times: {owed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `id` owes no mail: each was delivered and removed from the outbox.
async fn wait_nothing_owed(h: &Harness, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !owed(h, id).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "still owed: {:?}", owed(h, id).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gatehouse in-process, mailing through `transport`; its approver is `approver`.
async fn in_process(transport: domain::config::MailTransport, approver: &str) -> Harness {
    let approver = approver.to_string();
    Harness::start_with(move |c| {
        c.mail_transport = transport;
        c.approvers.default = vec![approver];
        c.mail_from = FROM.into();
    })
    .await
}

#[tokio::test]
async fn a_mail_the_relay_refuses_stays_owed_and_goes_out_once_it_is_taken() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    relay.refuse(&approver);
    let h = in_process(relay.transport(relay.port, |_| {}), &approver).await;
    let id = submit(&h, &order("RITM0030006", &requester)).await;
    // The relay takes the requester's mail and refuses the approver's, again and again.
    relay.wait_for(&requester, "Received: RITM0030006").await;
    let error = wait_owed(&h, &id, &approver, 2).await;
    assert_eq!(error, "SMTP relay: refused the mail (554)");
    assert!(relay.delivered_to(&approver).is_empty());
    assert_eq!(h.request(&id).await["status"], "pending_approval");

    relay.accept(&approver);
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030006").await;
    assert_well_formed(&ask, &approver);
    approval_links(&h, &ask, "RITM0030006").await;
    wait_nothing_owed(&h, &id).await;
    assert_eq!(relay.delivered_to(&approver).len(), 1, "delivered once");
    assert_eq!(relay.delivered_to(&requester).len(), 1, "the requester's mail was not sent again");
}

#[tokio::test]
async fn mail_owed_while_the_relay_is_down_goes_out_when_it_comes_up() {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let port = unused_port();
    let h = in_process(relay.transport(port, |_| {}), &approver).await;
    let id = submit(&h, &order("RITM0030007", &requester)).await;
    for to in [&approver, &requester] {
        let error = wait_owed(&h, &id, to, 2).await;
        assert_eq!(error, "SMTP relay: could not be reached");
    }
    assert!(relay.delivered_to(&approver).is_empty() && relay.delivered_to(&requester).is_empty());

    let _up = bring_up(port, &relay).await;
    let ask = relay.wait_for(&approver, "Approval needed: RITM0030007").await;
    assert_well_formed(&ask, &approver);
    approval_links(&h, &ask, "RITM0030007").await;
    let received = relay.wait_for(&requester, "Received: RITM0030007").await;
    assert_well_formed(&received, &requester);
    wait_nothing_owed(&h, &id).await;
    assert_eq!(relay.delivered_to(&approver).len(), 1);
    assert_eq!(relay.delivered_to(&requester).len(), 1);
}

/// With the relay's settings adjusted by `tune`, Gatehouse gets no mail through: each stays owed
/// with `expected` as its last error.
async fn nothing_gets_through(tune: impl FnOnce(&mut BTreeMap<String, String>), expected: &str) {
    let relay = Relay::from_env();
    let (approver, requester) = people();
    let h = in_process(relay.transport(relay.port, tune), &approver).await;
    let id = submit(&h, &order("RITM0030008", &requester)).await;
    assert_eq!(wait_owed(&h, &id, &approver, 2).await, expected);
    assert_eq!(wait_owed(&h, &id, &requester, 2).await, expected);
    assert!(relay.delivered_to(&approver).is_empty() && relay.delivered_to(&requester).is_empty());
}

#[tokio::test]
async fn without_the_relays_ca_its_certificate_is_not_trusted_and_nothing_is_sent() {
    nothing_gets_through(
        |s| {
            s.remove("GATEHOUSE_SMTP_CA_FILE");
        },
        "SMTP relay: the TLS handshake failed (is the relay's certificate trusted, and does it name the host?)",
    )
    .await;
}

#[tokio::test]
async fn with_a_wrong_password_the_relay_refuses_gatehouse_and_nothing_is_sent() {
    nothing_gets_through(
        |s| {
            s.insert("GATEHOUSE_SMTP_PASSWORD".into(), "not-the-password".into());
        },
        "SMTP relay: refused to authenticate Gatehouse (535)",
    )
    .await;
}
