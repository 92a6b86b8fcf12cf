//! Approval links: looking never acts; one decision wins; every other link of the request dies with
//! it; expired and cancelled links say so.

use jiff::Timestamp;

use super::Services;
use super::stages::progress_of;
use crate::approvals::Approval;
use crate::config::ApproverProof;
use crate::error::{Error, Result};
use crate::identity::same_person;
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{OutboxMessage, Request, RequestId, Status};
use crate::ports::Write;
use crate::signin::ApproverSession;
use crate::token::{ApprovalToken, TokenRecord};

/// What the history, the work note and the requester's mail say of a decision made without sign-in.
pub const LINK_ONLY: &str = "link only: anyone holding the link could decide";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }
}

/// Where a link stands, for its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting for this approver's decision.
    Open,
    /// Decided (by anyone); the request's `status`, `decided_by` and comment tell how.
    Decided,
    /// The link or the request expired.
    Expired,
    Cancelled,
    /// The approver is the requester or opened the item: they may look but not decide.
    OwnRequest,
    /// The link's stage is over (its quorum approved); the request waits for a later stage.
    StagePassed,
    /// Its holder (or the approver they decide for) already counted in a stage of this request:
    /// one person counts once.
    AlreadyCounted,
    /// A delegate's link whose delegation is over (or not yet begun).
    DelegationInactive {
        member: String,
    },
    /// Deciding needs a sign-in as the link's approver, and there is no session.
    SignInRequired,
    /// Signed in, but as someone else than the link's approver.
    NotTheApprover {
        signed_in: String,
    },
}

#[derive(Debug, Clone)]
pub struct LinkView {
    pub request: Request,
    pub approver: String,
    /// For a delegate's link: the approver they decide for.
    pub on_behalf_of: Option<String>,
    /// The stage (0-based) the link asks for.
    pub stage: usize,
    pub state: LinkState,
}

impl LinkView {
    fn of(record: &TokenRecord, request: Request, state: LinkState) -> LinkView {
        LinkView {
            request,
            approver: record.approver.clone(),
            on_behalf_of: record.on_behalf_of.clone(),
            stage: record.stage as usize,
            state,
        }
    }

    /// The request's approval progress (one stage for a request recorded before stages).
    pub fn progress(&self) -> Approval {
        progress_of(&self.request)
    }
}

#[derive(Debug, Clone)]
pub enum DecideOutcome {
    /// This POST was recorded: it decided the request, or counted in its stage; the sentence
    /// says which.
    Decided { request: Request, summary: String },
    /// Someone decided before (409), or the link cannot decide (410 expired or cancelled, 403 own
    /// request): the view says which.
    Refused(LinkView),
}

impl Services {
    fn link_state(&self, record: &TokenRecord, request: &Request, now: Timestamp) -> LinkState {
        match request.status {
            Status::PendingApproval if now >= record.expires_at || now >= request.expires_at => LinkState::Expired,
            Status::PendingApproval => {
                let approval = progress_of(request);
                let counted_as = record.on_behalf_of.as_deref().unwrap_or(&record.approver);
                if request.is_requested_by(&record.approver) || request.is_requested_by(counted_as) {
                    LinkState::OwnRequest
                } else if approval.open_stage() != Some(record.stage as usize) {
                    LinkState::StagePassed
                } else if approval.counted(&record.approver) || approval.counted(counted_as) {
                    LinkState::AlreadyCounted
                } else if let Some(member) = &record.on_behalf_of
                    && !self.delegation_active(member, &record.approver, now)
                {
                    LinkState::DelegationInactive { member: member.clone() }
                } else {
                    LinkState::Open
                }
            }
            Status::Expired => LinkState::Expired,
            Status::Cancelled => LinkState::Cancelled,
            _ => LinkState::Decided,
        }
    }
}

impl Services {
    async fn link(&self, token: &str) -> Result<(ApprovalToken, TokenRecord, Request)> {
        let not_found = || Error::NotFound("approval link".into());
        let token = ApprovalToken::parse(token).ok_or_else(not_found)?;
        let record = self.store.token(&token.hash()).await?.ok_or_else(not_found)?;
        let request = self.store.get(&record.request_id).await?.ok_or_else(not_found)?;
        Ok((token, record, request))
    }

    /// What the link's page shows. Changes nothing.
    pub async fn view_link(&self, token: &str) -> Result<LinkView> {
        let (_, record, request) = self.link(token).await?;
        let state = self.link_state(&record, &request, Timestamp::now());
        Ok(LinkView::of(&record, request, state))
    }

    /// Records the decision if the link may still decide. Races between clicks, approvers and the
    /// sweeper are settled by the store's conditional write; the loser re-reads and is refused.
    /// Where sign-in is configured, `session` must be the link's approver's.
    pub async fn decide(
        &self,
        token: &str,
        decision: Decision,
        comment: Option<String>,
        session: Option<&ApproverSession>,
    ) -> Result<DecideOutcome> {
        let comment = comment.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        if let Some(c) = &comment
            && c.chars().count() > 2000
        {
            return Err(Error::invalid("comment", "must be at most 2000 characters"));
        }
        for _ in 0..8 {
            let (_, record, request) = self.link(token).await?;
            let now = Timestamp::now();
            let mut state = self.link_state(&record, &request, now);
            let proof = match (&self.config.approver_proof, session) {
                (ApproverProof::LinkOnly, _) => LINK_ONLY.to_string(),
                (ApproverProof::SignIn(_), None) => {
                    state = if state == LinkState::Open { LinkState::SignInRequired } else { state };
                    String::new()
                }
                (ApproverProof::SignIn(_), Some(s)) if !same_person(&s.identity.email, &record.approver) => {
                    if state == LinkState::Open {
                        state = LinkState::NotTheApprover { signed_in: s.identity.email.clone() };
                    }
                    String::new()
                }
                (ApproverProof::SignIn(_), Some(s)) => s.identity.describe(),
            };
            if state != LinkState::Open {
                return Ok(DecideOutcome::Refused(LinkView::of(&record, request, state)));
            }
            let expected = request.version;
            let (write, summary) =
                self.record_decision(request, expected, &record, decision, comment.clone(), proof, now)?;
            match self.store.apply(write).await {
                Ok(request) => {
                    tracing::info!(request = %request.id, status = %request.status, "decision recorded");
                    if request.status != Status::PendingApproval {
                        let decision = if request.status == Status::Approved { "approved" } else { "denied" };
                        crate::metrics::count(crate::metrics::Counter::Decisions, decision);
                    }
                    self.signals.messages_owed();
                    if request.status == Status::Approved {
                        // Its servers now count against the cloud's quota at intake: recount.
                        self.catalog.limits().forget(&request.cloud);
                        self.signals.approved(&request.id);
                    }
                    return Ok(DecideOutcome::Decided { request, summary });
                }
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }

    /// Cancels a request still waiting for approval (its RITM was cancelled). Cancelling a cancelled
    /// request answers it again; a decided one is a conflict.
    pub async fn cancel(&self, id: &RequestId, actor: &str, reason: Option<String>) -> Result<Request> {
        for _ in 0..8 {
            let mut request = self.store.get(id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
            match request.status {
                Status::Cancelled => return Ok(request),
                Status::PendingApproval => {}
                other => {
                    return Err(Error::Conflict(format!(
                        "request is {other}; only a request pending approval can be cancelled"
                    )));
                }
            }
            let now = Timestamp::now();
            let expected = request.version;
            let history = request.transition(Status::Cancelled, actor, reason.clone(), now)?;
            let messages = vec![OutboxMessage::mail(
                &request.id,
                now,
                MailNotice { to: request.requester.email.clone(), template: MailTemplate::Cancelled },
            )];
            let write = Write { history: vec![history], messages, ..Write::new(request, expected) };
            match self.store.apply(write).await {
                Ok(request) => {
                    self.signals.messages_owed();
                    return Ok(request);
                }
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }
}
