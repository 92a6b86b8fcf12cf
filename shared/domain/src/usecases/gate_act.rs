//! Acting on the gate (DESIGN.md, "Gatehouse acts only on proceed"): the waiting verify job is
//! played, and the waiting GitLab deployment of the commit approved, only while the gate says
//! `proceed`; a rejection rejects the waiting deployment with the reason. A change approved while
//! its window is shut is acted on when the window opens: every open change carries `check_at`,
//! and the sweeper looks again then (and every interval, for deployments that start waiting for
//! approval after the change was approved).

use jiff::{SignedDuration, Timestamp};

use super::gate::{ChangeGate, GateDecision, VERIFY_JOB_NAME};
use super::gate_history::{record_answer, work_note};
use crate::changes::{ChangeEntry, ChangeEvent, ChangeRecord, ChangeState};
use crate::error::{Error, Result};

const SWEEP_BATCH: usize = 100;

impl ChangeGate {
    fn recheck_at(&self, now: Timestamp) -> Timestamp {
        now + SignedDuration::try_from(self.recheck).unwrap_or(SignedDuration::from_mins(1))
    }

    /// Evaluates the gate for `rec` with `change` as ServiceNow shows it now, acts only on
    /// `proceed` (or rejects on a rejection), records what was done and when to look again.
    pub(crate) async fn act(
        &self,
        mut rec: ChangeRecord,
        change: &ChangeState,
        now: Timestamp,
    ) -> Result<ChangeRecord> {
        for _ in 0..5 {
            let answer = self.answer(&rec, change, now);
            let expected = rec.version;
            let mut next = rec.clone();
            next.last_approval = Some(change.approval.clone());
            next.updated_at = now;
            let mut play = None;
            match answer.decision {
                GateDecision::Proceed => {
                    if next.played_job.is_none() {
                        play = self.verify_job_to_play(&rec).await?;
                        next.played_job = play;
                    }
                    next.check_at = Some(self.recheck_at(now));
                }
                GateDecision::Wait => {
                    let opens = answer.window.next_open_at.as_ref().map(|z| z.timestamp());
                    let again = self.recheck_at(now);
                    next.check_at = Some(match opens {
                        Some(t) if change.approval == "approved" && t > now && t < again => t,
                        _ => again,
                    });
                }
                GateDecision::Blocked => next.check_at = None,
            }
            record_answer(&mut next, &answer, now);
            next.version += 1;
            // Claim first, so two callbacks or sweeps cannot both play the job.
            match self.records.put_change(&next, Some(expected)).await {
                Ok(()) => {}
                Err(Error::Stale) => {
                    rec = self.records.get_change(&rec.key).await?.ok_or_else(|| Error::NotFound("change".into()))?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            // What was done, for the history: a step that failed half way still records its part.
            let mut done: Vec<ChangeEntry> = Vec::new();
            let acted = async {
                if let Some(job) = play {
                    self.code.play_job(rec.key.project_id, job).await?;
                    done.push(ChangeEntry::gate(
                        now,
                        ChangeEvent::Acted,
                        format!("verify job {job} of pipeline {} played in GitLab", rec.pipeline_id),
                    ));
                }
                match answer.decision {
                    GateDecision::Proceed => {
                        let comment = format!("{} approved in ServiceNow; the change gate says proceed", change.number);
                        let approved = self
                            .code
                            .approve_deployments(rec.key.project_id, &rec.key.environment, &rec.key.sha, &comment)
                            .await?;
                        if !approved.is_empty() {
                            tracing::info!(change = %rec.number, ?approved, "waiting deployments approved");
                            done.push(ChangeEntry::gate(
                                now,
                                ChangeEvent::Acted,
                                format!("GitLab deployments {approved:?} to {} approved", rec.key.environment),
                            ));
                        }
                    }
                    GateDecision::Blocked if change.approval == "rejected" => {
                        let reason = format!("{} was rejected in ServiceNow: {}", change.number, answer.reason);
                        let rejected = self
                            .code
                            .reject_deployments(rec.key.project_id, &rec.key.environment, &rec.key.sha, &reason)
                            .await?;
                        if !rejected.is_empty() {
                            done.push(ChangeEntry::gate(
                                now,
                                ChangeEvent::Acted,
                                format!("GitLab deployments {rejected:?} to {} rejected", rec.key.environment),
                            ));
                        }
                        // Cancelled, so the commit's next pipeline gets a new change.
                        if change.is_open() {
                            let marker = format!("gatehouse:cancel:{}", rec.key.correlation_id());
                            let note = format!(
                                "{reason}. Gatehouse cancelled this change, so the next pipeline of commit {} gets a new one.",
                                rec.key.sha
                            );
                            self.changes.cancel(&rec.sys_id, &marker, &work_note(&note, &marker, &next.chain)).await?;
                            done.push(ChangeEntry::gate(now, ChangeEvent::Cancelled, note));
                        }
                    }
                    _ => {}
                }
                Ok::<_, Error>(())
            }
            .await;
            if !done.is_empty() {
                // Must not be lost: written onto whatever the record is by now.
                next = self.amend(&rec.key, |r| r.history.extend(done.iter().cloned())).await?;
            }
            if let Err(e) = acted {
                // Undo the claim of the job, so the next look can still play it.
                if play.is_some() {
                    let mut undo = next.clone();
                    undo.played_job = None;
                    undo.check_at = Some(now);
                    undo.version += 1;
                    let _ = self.records.put_change(&undo, Some(next.version)).await;
                }
                return Err(e);
            }
            if self.refresh_note(&mut next, &answer).await {
                next.version += 1;
                let _ = self.records.put_change(&next, Some(next.version - 1)).await;
            }
            return Ok(next);
        }
        Err(Error::Stale)
    }

    /// The job to play: the one named at request time, else the pipeline's waiting
    /// `gatehouse:verify` job; either only when GitLab says it is this change's verify job.
    async fn verify_job_to_play(&self, rec: &ChangeRecord) -> Result<Option<u64>> {
        let job = match rec.job_id {
            Some(job) => Some(job),
            None => self.code.manual_job(rec.key.project_id, rec.pipeline_id, VERIFY_JOB_NAME).await?,
        };
        match job {
            Some(job) if self.is_verify_job_of(rec, job).await? => Ok(Some(job)),
            Some(job) => {
                tracing::warn!(change = %rec.number, job, "not playing a job that is not this change's verify job");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The sweeper's part: every change whose `check_at` has come is evaluated again and acted on.
    /// Answers how many were looked at.
    pub async fn sweep(&self, now: Timestamp) -> Result<usize> {
        let due = self.records.changes_due(now, SWEEP_BATCH).await?;
        let n = due.len();
        for rec in due {
            if rec.sys_id.is_empty() {
                continue;
            }
            match self.pipeline_ended(&rec, now).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(change = %rec.number, error = %e.chain(), "could not read the change's pipeline")
                }
            }
            let outcome = match self.changes.get(&rec.sys_id).await {
                Ok(Some(change)) => self.act(rec.clone(), &change, now).await.map(|_| ()),
                Ok(None) => {
                    // Gone from ServiceNow: nothing left to act on.
                    let gone = format!("change {} is no longer in ServiceNow: nothing left to act on", rec.number);
                    let mut done = rec.clone();
                    done.check_at = None;
                    done.history.push(ChangeEntry::gate(now, ChangeEvent::Cancelled, gone));
                    done.version += 1;
                    self.records.put_change(&done, Some(rec.version)).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                tracing::warn!(change = %rec.number, error = %e.chain(), "could not re-evaluate a change; next sweep");
            }
        }
        Ok(n)
    }
}
