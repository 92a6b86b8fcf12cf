//! Contract cases for approval stages: a request's stage progress and its stage links read back
//! as written, and approvers racing in one stage pass it once, with one set of next-stage links.

use std::sync::Arc;

use domain::Error;
use domain::approvals::progress::Step;
use domain::approvals::{Approval, Stage, StageApproval};
use domain::mail::{LinkAsk, MailNotice, MailTemplate};
use domain::model::{HistoryEntry, OutboxMessage, Request, Status};
use domain::ports::{Store, Write};
use domain::token::{ApprovalToken, TokenRecord};
use jiff::Timestamp;

use super::{created, sample_request, sys_id};

fn staged_request(crowd: &[String]) -> Request {
    let mut r = sample_request(&sys_id());
    let mut approval = Approval {
        rule: "crowd".into(),
        auto_approved: false,
        stages: vec![
            Stage::waiting("crowd".into(), 2, crowd.to_vec()),
            Stage::waiting("final".into(), 1, vec!["final1@example.com".into(), "final2@example.com".into()]),
        ],
    };
    approval.open(0, r.created_at);
    r.approval = Some(approval);
    r
}

fn link(r: &Request, approver: &str, stage: u32, on_behalf_of: Option<&str>) -> (ApprovalToken, TokenRecord) {
    let t = ApprovalToken::generate();
    let record = TokenRecord {
        hash: t.hash(),
        request_id: r.id.clone(),
        approver: approver.into(),
        expires_at: r.expires_at,
        used_at: None,
        stage,
        on_behalf_of: on_behalf_of.map(str::to_string),
    };
    (t, record)
}

fn stage_mail(r: &Request, to: &str, stage: u32) -> OutboxMessage {
    let ask = LinkAsk { stage, on_behalf_of: None, escalated: false };
    OutboxMessage::mail(
        &r.id,
        r.created_at,
        MailNotice { to: to.into(), template: MailTemplate::ApprovalRequest { link_id: sys_id(), ask } },
    )
}

fn in_place(actor: &str, note: &str) -> HistoryEntry {
    HistoryEntry::unchanged(Timestamp::now(), actor, Status::PendingApproval, note.into())
}

/// What a stage's progress and a delegate's stage link are stored as is what is read back.
pub async fn stage_progress_and_stage_links_read_back(store: Arc<dyn Store>) {
    let r = staged_request(&["ops1@example.com".into(), "ops2@example.com".into()]);
    let (_, member) = link(&r, "ops1@example.com", 0, None);
    let (_, delegate) = link(&r, "deputy@example.com", 0, Some("ops1@example.com"));
    store.create(r.clone(), created(&r), vec![member.clone(), delegate.clone()], vec![]).await.unwrap();
    assert_eq!(store.get(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(store.token(&delegate.hash).await.unwrap(), Some(delegate.clone()));
    assert_eq!(store.token(&member.hash).await.unwrap(), Some(member));

    let mut next = r.clone();
    let expected = next.version;
    let step = next.approval.as_mut().unwrap().approve(StageApproval {
        approver: "ops1@example.com".into(),
        delegate: Some("deputy@example.com".into()),
        at: Timestamp::now(),
        proof: "link only".into(),
    });
    assert_eq!(step, Some(Step::Counted { missing: 1 }));
    next.touch(Timestamp::now());
    let (_, later) = link(&next, "final1@example.com", 1, None);
    let write = Write {
        history: vec![in_place("deputy@example.com", "approved for ops1")],
        use_token: Some(delegate.hash.clone()),
        new_tokens: vec![later.clone()],
        ..Write::new(next.clone(), expected)
    };
    let stored = store.apply(write).await.unwrap();
    assert_eq!(stored.approval, next.approval);
    assert_eq!(store.get(&r.id).await.unwrap().unwrap().approval, next.approval);
    assert!(store.token(&delegate.hash).await.unwrap().unwrap().used_at.is_some());
    assert_eq!(store.token(&later.hash).await.unwrap().map(|t| (t.stage, t.on_behalf_of)), Some((1, None)));
}

/// Thirty approvers of a quorum-2 stage approve at once, each as `Services::decide` does: read,
/// count in the open stage, write conditionally on the version read, and on a lost race read
/// again. Exactly two are counted, the stage passes once, and one set of next-stage links and
/// mails is written.
pub async fn racing_approvers_pass_a_stage_once(store: Arc<dyn Store>) {
    let crowd: Vec<String> = (0..30).map(|i| format!("crowd{i}@example.com")).collect();
    let r = staged_request(&crowd);
    let links: Vec<TokenRecord> = crowd.iter().map(|who| link(&r, who, 0, None).1).collect();
    store.create(r.clone(), created(&r), links.clone(), vec![]).await.unwrap();

    let tasks: Vec<_> = links
        .into_iter()
        .map(|record| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..64 {
                    let mut request = store.get(&record.request_id).await.unwrap().unwrap();
                    let approval = request.approval.as_mut().unwrap();
                    if approval.open_stage() != Some(record.stage as usize) || approval.counted(&record.approver) {
                        return None;
                    }
                    let expected = request.version;
                    let step = approval
                        .approve(StageApproval {
                            approver: record.approver.clone(),
                            delegate: None,
                            at: Timestamp::now(),
                            proof: "link only".into(),
                        })
                        .unwrap();
                    request.touch(Timestamp::now());
                    let mut history = vec![in_place(&record.approver, "approved")];
                    let (mut new_tokens, mut messages) = (vec![], vec![]);
                    if let Step::NextStage { next, .. } = step {
                        history.push(in_place("policy:crowd", "stage 1 passed"));
                        for who in ["final1@example.com", "final2@example.com"] {
                            new_tokens.push(link(&request, who, next as u32, None).1);
                            messages.push(stage_mail(&request, who, next as u32));
                        }
                    }
                    let write = Write {
                        history,
                        use_token: Some(record.hash.clone()),
                        new_tokens,
                        messages,
                        ..Write::new(request, expected)
                    };
                    match store.apply(write).await {
                        Ok(_) => return Some(step),
                        Err(Error::Stale) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                panic!("an approver lost 64 races in a row");
            })
        })
        .collect();
    let mut steps: Vec<Step> = Vec::new();
    for task in tasks {
        steps.extend(task.await.unwrap());
    }
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps.iter().filter(|s| matches!(s, Step::NextStage { .. })).count(), 1, "{steps:?}");

    let stored = store.get(&r.id).await.unwrap().unwrap();
    let approval = stored.approval.unwrap();
    assert_eq!(approval.stages[0].approved_by.len(), 2);
    assert_eq!(approval.open_stage(), Some(1));
    let history = store.history(&r.id).await.unwrap();
    assert_eq!(history.iter().filter(|h| h.note.as_deref() == Some("stage 1 passed")).count(), 1);
    assert_eq!(history.len(), 1 + 2 + 1, "created, two approvals, one pass");
    let mut finals: Vec<String> = store
        .messages_of(&r.id)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m.kind {
            domain::model::MessageKind::Mail(n) => Some(n.to),
            _ => None,
        })
        .collect();
    finals.sort();
    assert_eq!(finals, vec!["final1@example.com", "final2@example.com"], "one set of next-stage mails");
}
