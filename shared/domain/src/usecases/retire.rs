//! Retirement: at the lease's end the request's servers are deleted, the request item is noted and
//! the requester mailed, and the request becomes `retired`.
//!
//! Idempotent and safe after a crash half-way: the deletes happen before the one conditional write
//! that retires the request, so a retry finds some servers gone (404 is fine) and deletes the
//! rest; a PCD outage leaves the request `active` and due, and the next sweep tries again. Only a
//! server whose metadata carries this request's id is deleted: a recorded id that now names
//! something else is left alone. A boot volume goes with its server: Gatehouse creates it with
//! `delete_on_termination: true` (shared/pcd), and Nova deletes such a volume with the server.

use jiff::Timestamp;

use super::Services;
use crate::compute::REQUEST_ID_METADATA_KEY;
use crate::error::{Error, Result};
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{OutboxMessage, Request, RequestId, Status};
use crate::ports::Write;

impl Services {
    /// Deletes what is left of the request's servers; each is marked `DELETED` in the record.
    async fn delete_servers(&self, request: &mut Request) -> Result<()> {
        let cloud = self.catalog.cloud().clone();
        for server in request.servers.iter_mut() {
            match cloud.server(&request.cloud, &server.id).await? {
                None => {}
                Some(found)
                    if found.metadata.get(REQUEST_ID_METADATA_KEY).map(String::as_str) == Some(request.id.as_str()) =>
                {
                    cloud.delete_server(&request.cloud, &server.id).await?;
                    tracing::info!(request = %request.id, server = %server.id, "server deleted at retirement");
                }
                Some(_) => {
                    tracing::warn!(request = %request.id, server = %server.id, "the server's metadata names another request; not deleting it");
                    continue;
                }
            }
            server.status = "DELETED".into();
        }
        Ok(())
    }

    /// Retires an active request now: deletes its servers, then `active → retired` with the work
    /// note and the requester's mail in the same write. A retired request answers itself again.
    pub async fn retire(&self, id: &RequestId, actor: &str, why: String) -> Result<Request> {
        for _ in 0..8 {
            let mut request = self.store.get(id).await?.ok_or_else(|| Error::NotFound(format!("request {id}")))?;
            match request.status {
                Status::Retired => return Ok(request),
                Status::Active => {}
                other => {
                    return Err(Error::Conflict(format!("request is {other}; only an active request can be retired")));
                }
            }
            let expected = request.version;
            if let Err(e) = self.delete_servers(&mut request).await {
                crate::metrics::upstream_error(&e);
                return Err(e);
            }
            let now = Timestamp::now();
            let names = request.servers.iter().map(|s| format!("{} ({})", s.name, s.id)).collect::<Vec<_>>().join(", ");
            let history = request.transition(Status::Retired, actor, Some(format!("{why}; deleted {names}")), now)?;
            let mut messages = vec![OutboxMessage::mail(
                &request.id,
                now,
                MailNotice { to: request.requester.email.clone(), template: MailTemplate::Retired },
            )];
            let text = format!("Gatehouse retired this request ({why}): deleted {names} on {}.", request.cloud);
            messages.extend(self.work_note(&request, now, text, Some(true)));
            let write = Write { history: vec![history], messages, ..Write::new(request, expected) };
            match self.store.apply(write).await {
                Ok(request) => {
                    tracing::info!(request = %request.id, "request retired");
                    self.signals.messages_owed();
                    // Room was freed: the quota check reads the limits again.
                    self.catalog.limits().forget(&request.cloud);
                    return Ok(request);
                }
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }
}
