//! Provisioning: an approved request becomes running VMs on PCD, or a clear failure, exactly once —
//! through crashes, restarts, retries and Lambda timeouts.
//!
//! A worker first claims the request (a conditional write that also takes a lease), then creates
//! the servers one by one, recording each id as soon as Nova returns it. A worker that takes over
//! after a crash first adopts servers that carry this request's id in their metadata, so a create
//! that happened but was never recorded is not repeated. Waiting for ACTIVE happens only briefly in
//! one run; the sweeper re-checks the rest until the deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::Services;
use crate::compute::{
    Footprint, REQUEST_ID_METADATA_KEY, RETIRE_AT_METADATA_KEY, SERVER_TAG, ServerSpec, ServerState, nova_quota_message,
};
use crate::error::{Error, Result};
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{HistoryEntry, Lease, OutboxMessage, Request, RequestId, ServerRecord, Status};
use crate::ports::Write;

/// What one provisioning run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Nothing to do: not approved, already final, or another worker holds the lease.
    NotMine,
    /// Created or adopted, not yet ACTIVE: left for the sweeper's next look.
    Waiting,
    Active,
    Failed(String),
    /// The request item was closed in ServiceNow before anything was created.
    Cancelled,
}

fn since(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn record_of(s: &ServerState) -> ServerRecord {
    ServerRecord { id: s.id.clone(), name: s.name.clone(), status: s.status.clone(), addresses: s.addresses.clone() }
}

/// Turns an outside failure into the reason a requester reads.
/// The words a failure is recorded with; every upstream failure that reaches here is counted.
fn reason_of(e: &Error) -> String {
    crate::metrics::upstream_error(e);
    match e {
        Error::Quota { system, detail } => format!("{system} refused for lack of quota: {detail}"),
        Error::Upstream { system, detail, .. } => format!("{system} {detail}"),
        other => other.to_string(),
    }
}

impl Services {
    /// Takes the request for `worker`: `approved → provisioning`, or a `provisioning` request whose
    /// lease ran out or is `worker`'s own from before a restart. `None` when it is not ours to do.
    async fn claim(&self, id: &RequestId, worker: &str, wait: Duration) -> Result<Option<(Request, bool)>> {
        loop {
            let Some(mut request) = self.store.get(id).await? else { return Ok(None) };
            let now = Timestamp::now();
            let expected = request.version;
            let lease = Lease { owner: worker.to_string(), until: now + since(wait) + since(self.config.lease) };
            let mut messages = Vec::new();
            let (history, fresh) = match (request.status, request.lease.clone()) {
                (Status::Approved, _) => {
                    let h =
                        request.transition(Status::Provisioning, worker, Some("provisioning started".into()), now)?;
                    request.deadline = Some(now + since(self.config.provision_deadline));
                    let names = request.planned_names().join(", ");
                    messages.extend(self.work_note(
                        &request,
                        now,
                        format!("Provisioning started on {}: {names}.", request.cloud),
                        None,
                    ));
                    (h, true)
                }
                (Status::Provisioning, Some(l)) if l.until > now && l.owner != worker => return Ok(None),
                (Status::Provisioning, previous) => {
                    request.touch(now);
                    let note = match previous {
                        Some(l) if l.owner != worker => format!("taken over from {} whose lease ran out", l.owner),
                        Some(_) => "resumed after a restart".to_string(),
                        None => "re-checking the servers".to_string(),
                    };
                    let h = HistoryEntry {
                        at: now,
                        actor: worker.to_string(),
                        from: Some(Status::Provisioning),
                        to: Status::Provisioning,
                        note: Some(note),
                        proof: None,
                        hash: None,
                    };
                    (h, false)
                }
                _ => return Ok(None),
            };
            request.lease = Some(lease.clone());
            // If this worker dies, the sweeper looks again once the lease has run out.
            request.due_at = Some(lease.until);
            let write = Write { history: vec![history], messages, ..Write::new(request, expected) };
            match self.store.apply(write).await {
                Ok(request) => {
                    if fresh {
                        self.signals.messages_owed();
                        // One more request building: what the quota check holds for it has moved.
                        self.catalog.limits().forget(&request.cloud);
                    }
                    return Ok(Some((request, fresh)));
                }
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `request` as the lease holder; `Stale` means another worker took it over.
    async fn save(
        &self,
        mut request: Request,
        history: Vec<HistoryEntry>,
        messages: Vec<OutboxMessage>,
    ) -> Result<Request> {
        let expected = request.version;
        request.touch(Timestamp::now());
        let write = Write { history, messages, ..Write::new(request, expected) };
        self.store.apply(write).await
    }

    async fn finish(
        &self,
        mut request: Request,
        worker: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<Progress> {
        let now = Timestamp::now();
        let expected = request.version;
        let (to, note, progress) = match &outcome {
            Ok(()) => {
                let summary = request
                    .servers
                    .iter()
                    .map(|s| format!("{} ({}) {}", s.name, s.id, s.addresses.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ");
                (Status::Active, format!("active: {summary}"), Progress::Active)
            }
            Err(reason) => (Status::Failed, reason.clone(), Progress::Failed(reason.clone())),
        };
        let history = request.transition(to, worker, Some(note), now)?;
        if to == Status::Active {
            // The lease's first reminder, or its end, is what the sweeper looks at next.
            request.due_at =
                request.retirement.as_ref().map(|l| super::lease::next_due(l, &self.config.leases.reminders));
        }
        let mut messages = Vec::new();
        match outcome {
            Ok(()) => {
                messages.push(OutboxMessage::mail(
                    &request.id,
                    now,
                    MailNotice { to: request.requester.email.clone(), template: MailTemplate::Active },
                ));
                let servers = request
                    .servers
                    .iter()
                    .map(|s| {
                        let addresses =
                            if s.addresses.is_empty() { "no address".into() } else { s.addresses.join(", ") };
                        format!("{} (id {}, {addresses})", s.name, s.id)
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let text = format!("VMs are running on {}: {servers}.", request.cloud);
                messages.extend(self.work_note(&request, now, text, Some(true)));
            }
            Err(reason) => {
                messages.extend(self.work_note(&request, now, format!("Provisioning failed: {reason}"), Some(false)));
                request.error = Some(reason);
                messages.push(OutboxMessage::mail(
                    &request.id,
                    now,
                    MailNotice { to: request.requester.email.clone(), template: MailTemplate::Failed },
                ));
                let approvers = match &request.decided_by {
                    Some(a) => vec![a.clone()],
                    None => request.approvers.clone(),
                };
                for a in approvers {
                    messages.push(OutboxMessage::mail(
                        &request.id,
                        now,
                        MailNotice { to: a, template: MailTemplate::FailedApprover },
                    ));
                }
            }
        }
        let write = Write { history: vec![history], messages, ..Write::new(request, expected) };
        let request = self.store.apply(write).await?;
        tracing::info!(request = %request.id, status = %request.status, "provisioning ended");
        self.signals.messages_owed();
        self.record_outcome(&request, &progress, now).await;
        Ok(progress)
    }

    /// `gatehouse_approve_to_active_seconds` (from the history's approval) or
    /// `gatehouse_provision_failures_total{cause}`.
    async fn record_outcome(&self, request: &Request, progress: &Progress, now: Timestamp) {
        match progress {
            Progress::Active => {
                let approved = match self.store.history(&request.id).await {
                    Ok(history) => history.iter().rev().find(|h| h.to == Status::Approved).map(|h| h.at),
                    Err(e) => {
                        tracing::warn!(request = %request.id, error = %e.chain(), "could not read the history for the build time");
                        None
                    }
                };
                if let Some(at) = approved {
                    crate::metrics::approve_to_active(now.duration_since(at).as_secs_f64().max(0.0));
                }
            }
            Progress::Failed(reason) => {
                crate::metrics::count(crate::metrics::Counter::ProvisionFailures, cause(reason))
            }
            _ => {}
        }
    }

    /// Checked just before the first create of a run: whether the project's quota still holds the
    /// `servers` about to be created, as Nova counts use now. Other approved requests are not
    /// set aside here (intake did that): first come, first served. A refusal reads as Nova's would
    /// and ends the request `failed` before anything is created, rather than after a count of 3
    /// made two servers. When the limits cannot be read the create goes ahead: Nova enforces its
    /// quota anyway, and its refusal (403) ends the request the same way.
    async fn quota_refusal(&self, request: &Request, servers: usize) -> Option<String> {
        let cloud = self.catalog.cloud();
        // The flavor's size comes from Nova's flavor list (one call; not the whole catalog, whose
        // images may run to many pages); a flavor gone from it still takes instances.
        let (limits, flavors) = tokio::join!(cloud.limits(&request.cloud), cloud.flavors(&request.cloud));
        let limits = match limits {
            Ok(limits) => limits,
            Err(e) => {
                tracing::warn!(request = %request.id, error = %e.chain(), "could not read the compute limits; creating anyway");
                return None;
            }
        };
        let size = flavors.ok().and_then(|all| all.into_iter().find(|f| f.id == request.flavor.id));
        let size = size.map(|f| (f.vcpus, f.ram_mb));
        let (vcpus, ram_mb) = size.unwrap_or((0, 0));
        let shortfalls = limits.shortfalls(Footprint::default(), Footprint::of(servers as u64, vcpus, ram_mb));
        if shortfalls.is_empty() {
            return None;
        }
        tracing::info!(request = %request.id, cloud = %request.cloud, "quota cannot hold the servers; not creating them");
        let plural = if servers == 1 { "" } else { "s" };
        Some(format!(
            "the quota of cloud {} cannot hold {servers} more server{plural} of {} (checked before creating any): {}",
            request.cloud,
            request.flavor.name,
            nova_quota_message(&shortfalls)
        ))
    }

    /// One provisioning run for `worker`, waiting for ACTIVE at most `wait`.
    pub async fn provision(&self, id: &RequestId, worker: &str, wait: Duration) -> Result<Progress> {
        // Read the item again just before anything is created: it may have been cancelled after
        // approval, and the cancel call to Gatehouse lost.
        if let Some(request) = self.store.get(id).await?
            && request.status == Status::Approved
        {
            match self.cancelled_at_source(&request).await {
                Ok(true) => return Ok(Progress::Cancelled),
                Ok(false) => {}
                Err(Error::Stale) => return Ok(Progress::NotMine),
                // Left `approved` and due: the sweeper tries again.
                Err(e) => return Err(e),
            }
        }
        let Some((mut request, fresh)) = self.claim(id, worker, wait).await? else { return Ok(Progress::NotMine) };
        let run = self.work(&mut request, fresh, wait).await;
        let outcome = match run {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                // Not ACTIVE yet: release the lease and let the sweeper look again in a while.
                let mut parked = request;
                parked.lease = None;
                parked.due_at = Some(Timestamp::now() + since(self.config.sweep_interval));
                return match self.save(parked, vec![], vec![]).await {
                    Ok(_) | Err(Error::Stale) => Ok(Progress::Waiting),
                    Err(e) => Err(e),
                };
            }
            Err(Error::Stale) => return Ok(Progress::NotMine),
            Err(e @ (Error::Upstream { .. } | Error::Quota { .. })) => Err(reason_of(&e)),
            Err(e) => return Err(e),
        };
        match self.finish(request, worker, outcome).await {
            Err(Error::Stale) => Ok(Progress::NotMine),
            other => other,
        }
    }

    /// Creates or adopts every planned server and waits for them. `Ok(Some(Err(reason)))` ends in
    /// failure, `Ok(Some(Ok(())))` in active, `Ok(None)` leaves it waiting.
    async fn work(
        &self,
        request: &mut Request,
        fresh: bool,
        wait: Duration,
    ) -> Result<Option<std::result::Result<(), String>>> {
        let cloud = self.catalog.cloud().clone();
        let started = tokio::time::Instant::now();
        let deadline = request.deadline.unwrap_or_else(|| Timestamp::now() + since(self.config.provision_deadline));
        // A request claimed straight from `approved` has never created anything; a take-over
        // may have, so it first adopts the servers carrying this request's id.
        let planned = request.planned_names();
        let mut to_create = Vec::new();
        for name in &planned {
            if request.servers.iter().any(|s| &s.name == name) {
                continue;
            }
            let adopted =
                if fresh {
                    None
                } else {
                    cloud.servers_named(&request.cloud, name).await?.into_iter().find(|s| {
                        s.metadata.get(REQUEST_ID_METADATA_KEY).map(String::as_str) == Some(request.id.as_str())
                    })
                };
            match adopted {
                Some(server) => {
                    request.servers.push(record_of(&server));
                    *request = self.save(request.clone(), vec![], vec![]).await?;
                }
                None => to_create.push(name.clone()),
            }
        }
        if !to_create.is_empty()
            && let Some(reason) = self.quota_refusal(request, to_create.len()).await
        {
            return Ok(Some(Err(reason)));
        }
        for name in &to_create {
            let spec = ServerSpec {
                name: name.clone(),
                image_id: request.image.id.clone(),
                flavor_id: request.flavor.id.clone(),
                network_id: request.network.id.clone(),
                metadata: BTreeMap::from_iter(
                    [
                        (REQUEST_ID_METADATA_KEY.to_string(), request.id.to_string()),
                        ("gatehouse_source".to_string(), request.source.number.clone()),
                    ]
                    .into_iter()
                    .chain(
                        request
                            .retirement
                            .as_ref()
                            .map(|l| (RETIRE_AT_METADATA_KEY.to_string(), l.retire_at.to_string())),
                    ),
                ),
                boot_volume_gb: request.boot_volume_gb,
                description: Some(format!("Gatehouse request {} for {}", request.id, request.source.number)),
                tags: vec![SERVER_TAG.to_string()],
            };
            let created = cloud.create_server(&request.cloud, &spec).await;
            // What the project uses has moved (or Nova said it is full): the next intake reads it again.
            self.catalog.limits().forget(&request.cloud);
            let id = created?;
            tracing::info!(request = %request.id, server = %id, name = %name, "server create accepted");
            request.servers.push(ServerRecord { id, name: name.clone(), status: "BUILD".into(), addresses: vec![] });
            *request = self.save(request.clone(), vec![], vec![]).await?;
        }
        // Adopted and created servers in the planned order, as the requester will read them.
        request.servers.sort_by_key(|s| planned.iter().position(|n| n == &s.name));

        let mut pause = Duration::from_millis(200);
        // A server that exists is waited for until the deadline: a PCD hiccup while only looking
        // at it does not fail the request (a refused create does, above).
        let mut last_error: Option<String> = None;
        loop {
            for server in request.servers.iter_mut() {
                let looked = match cloud.server(&request.cloud, &server.id).await {
                    Ok(found) => found,
                    Err(e @ Error::Upstream { .. }) => {
                        tracing::warn!(request = %request.id, server = %server.id, error = %e.chain(), "could not read a server; waiting");
                        last_error = Some(reason_of(&e));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match looked {
                    Some(state) => {
                        if state.status == "ERROR" {
                            let fault = state.fault.unwrap_or_else(|| "no fault message".into());
                            *server = record_of(&ServerState { fault: None, ..state });
                            return Ok(Some(Err(format!("server {} went to ERROR: {fault}", server.name))));
                        }
                        *server = record_of(&state);
                    }
                    None => {
                        return Ok(Some(Err(format!("server {} ({}) disappeared from PCD", server.name, server.id))));
                    }
                }
            }
            if request.servers.iter().all(|s| s.status == "ACTIVE") {
                return Ok(Some(Ok(())));
            }
            if Timestamp::now() >= deadline {
                let minutes = self.config.provision_deadline.as_secs().div_ceil(60);
                let waiting: Vec<_> = request
                    .servers
                    .iter()
                    .filter(|s| s.status != "ACTIVE")
                    .map(|s| format!("{} ({})", s.name, s.status))
                    .collect();
                let seen = last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
                return Ok(Some(Err(format!("not ACTIVE within {minutes} min: {}{seen}", waiting.join(", ")))));
            }
            if started.elapsed() + pause > wait {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// A failure's cause as a small label set: what a dashboard groups by.
fn cause(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("quota") {
        "quota"
    } else if r.contains("not active within") {
        "timeout"
    } else if r.contains("went to error") {
        "server_error"
    } else {
        "upstream"
    }
}
