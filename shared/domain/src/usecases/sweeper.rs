//! The sweeper, run on a schedule: expires overdue approvals, reminds approvers once at half time,
//! finds the provisioning work that is due (a missed start, a lease that ran out, a server still
//! building), and reminds requesters of their servers' leases and retires them at the end. The
//! caller hands the provisioning work to its provisioning workers.

use jiff::Timestamp;

use super::Services;
use super::stages::{progress_of, reminder_at};
use crate::error::{Error, Result};
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{OutboxMessage, RequestId, Status};
use crate::ports::Write;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub expired: usize,
    pub reminded: usize,
    /// Requests whose provisioning should run now.
    pub to_provision: Vec<RequestId>,
    /// Requesters mailed an Extend link because their lease ends soon.
    pub lease_reminded: usize,
    /// Active requests whose lease ended and whose servers were deleted.
    pub retired: usize,
    /// Pending requests whose open stage stayed open too long and was escalated.
    pub escalated: usize,
}

const BATCH: usize = 200;

impl Services {
    pub async fn sweep(&self, now: Timestamp) -> Result<Sweep> {
        let mut sweep = Sweep::default();
        for request in self.store.due(Status::PendingApproval, now, BATCH).await? {
            if now < request.expires_at {
                match self.escalate(&request.id, now).await {
                    Ok(true) => {
                        sweep.escalated += 1;
                        continue;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(request = %request.id, error = %e.chain(), "sweeper could not escalate a stage");
                        continue;
                    }
                }
            }
            match self.expire_or_remind(request.id.clone(), now).await {
                Ok(Some(true)) => sweep.expired += 1,
                Ok(Some(false)) => sweep.reminded += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(request = %request.id, error = %e.chain(), "sweeper could not update a pending request")
                }
            }
        }
        for request in self.store.due(Status::Active, now, BATCH).await? {
            match self.lease_due(&request.id, now).await {
                Ok(Some(true)) => sweep.retired += 1,
                Ok(Some(false)) => sweep.lease_reminded += 1,
                Ok(None) => {}
                // Left active and due (a PCD outage, say): the next sweep tries again.
                Err(e) => {
                    tracing::warn!(request = %request.id, error = %e.chain(), "sweeper could not remind or retire a lease")
                }
            }
        }
        for status in [Status::Approved, Status::Provisioning] {
            sweep.to_provision.extend(self.store.due(status, now, BATCH).await?.into_iter().map(|r| r.id));
        }
        if sweep.expired + sweep.reminded + sweep.escalated + sweep.lease_reminded + sweep.retired > 0 {
            self.signals.messages_owed();
        }
        crate::metrics::record_message_counts(self.store.as_ref()).await;
        Ok(sweep)
    }

    /// Expires a request past its expiry (`Some(true)`), or sends the half-time reminder with fresh
    /// links to whoever its open stage waits on (`Some(false)`). A concurrent decision wins; then nothing happens (`None`).
    async fn expire_or_remind(&self, id: RequestId, now: Timestamp) -> Result<Option<bool>> {
        for _ in 0..4 {
            let Some(mut request) = self.store.get(&id).await? else { return Ok(None) };
            if request.status != Status::PendingApproval || request.due_at.is_none_or(|d| d > now) {
                return Ok(None);
            }
            let expected = request.version;
            let write = if now >= request.expires_at {
                let history = request.transition(
                    Status::Expired,
                    "sweeper",
                    Some("nobody decided before the links expired".into()),
                    now,
                )?;
                let mut messages = vec![OutboxMessage::mail(
                    &request.id,
                    now,
                    MailNotice { to: request.requester.email.clone(), template: MailTemplate::Expired },
                )];
                let text = "Nobody approved this request in Gatehouse before its approval links expired.";
                messages.extend(self.work_note(&request, now, text.into(), Some(false)));
                Write { history: vec![history], messages, ..Write::new(request, expected) }
            } else if request.reminded || now < reminder_at(&request) {
                // Due for something else (an escalation another sweep made): only set the next time.
                let next = self.pending_due(&request);
                if next <= now || request.due_at == Some(next) {
                    return Ok(None);
                }
                request.due_at = Some(next);
                request.touch(now);
                let write = Write::new(request, expected);
                return match self.store.apply(write).await {
                    Ok(_) | Err(Error::Stale) => Ok(None),
                    Err(e) => Err(e),
                };
            } else {
                // The reminder goes to whoever the open stage still waits on, with fresh links.
                let approval = progress_of(&request);
                let Some(index) = approval.open_stage() else { return Ok(None) };
                let waiting = approval.stages[index].eligible(|a| approval.counted(a));
                let invites = self.invites(&request, &approval, &waiting, now);
                let (tokens, messages) = self.stage_links(&request, index, &invites, now, true, false);
                request.reminded = true;
                request.due_at = Some(self.pending_due(&request));
                request.touch(now);
                Write { new_tokens: tokens, messages, ..Write::new(request, expected) }
            };
            let expiring = write.request.status == Status::Expired;
            match self.store.apply(write).await {
                Ok(_) => return Ok(Some(expiring)),
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
