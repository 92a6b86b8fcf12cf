//! A client of ServiceNow's Table API (`/api/now/table/...`) for Gatehouse: request items
//! (`sc_req_item`), change requests (`change_request`) and their work notes.
//!
//! Ports of the domain: [`RequestItems`] (`SourceItems`: a request item with its people and
//! Gatehouse variables, for intake), [`RequestItemWriteBack`] (`Itsm`: work notes, then closing
//! the item with its state and stage) and [`ServiceNowChanges`].
//!
//! - [`Client::get`], [`Client::get_fields`] (chosen and dot-walked fields), [`Client::query`]
//!   (follows `Link: rel="next"` paging), [`Client::create`], [`Client::find_or_create`],
//!   [`Client::update`] (PATCH), and [`Client::add_work_note`],
//!   which writes a note exactly once by looking for its marker before writing and before any
//!   retry.
//! - Standard changes through the Change Management API: [`Client::standard_templates`]
//!   (`GET /api/sn_chg_rest/change/standard/template`) and [`Client::create_standard_change`]
//!   (`POST /api/sn_chg_rest/change/standard/{template}`, created at most once like
//!   [`Client::find_or_create`]).
//! - Queries only from typed conditions ([`Query`]); values that could add a condition (`^`,
//!   line breaks, `javascript:`) are refused, because ServiceNow cannot escape them and silently
//!   ignores conditions it does not understand.
//! - `sysparm_display_value` is always explicit ([`DisplayValue`]); [`Record`] reads plain values
//!   and `{"value","display_value","link"}` objects alike.
//! - HTTP Basic or OAuth client credentials (token cached, renewed 60 s before it expires, one
//!   re-authentication on a 401). Secrets never appear in `Debug`, logs or errors.
//! - 429 (honouring `Retry-After`, capped), 5xx and transport failures are retried with capped
//!   exponential backoff; writes whose effect is uncertain are not retried blindly. Every
//!   failure is a [`domain::Error::Upstream`] whose `system` names the table
//!   (`ServiceNow change_request`) and whose `detail` names the record and what happened
//!   (`record 9d38…: answered HTTP 503 (5 attempts)`); ServiceNow's own error body only goes into
//!   the error's `source` ([`UpstreamMessage`]), for logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), domain::Error> {
//! use gatehouse_servicenow::{Client, DisplayValue, Query, ServiceNowConfig, SnAuth};
//! let sn = Client::new(ServiceNowConfig::new(
//!     "https://acme.service-now.com",
//!     SnAuth::Basic { user: "gatehouse".into(), password: "…".into() },
//! ))?;
//! let q = Query::new().eq("correlation_id", "gitlab:4242:0a1b…:production")?.active(true).order_by_desc("sys_created_on")?;
//! let changes = sn.query("change_request", &q, &["sys_id", "number", "state", "approval"], DisplayValue::Both, 10).await?;
//! for c in &changes {
//!     println!("{} {} ({})", c.number().unwrap_or("?"), c.value("state").unwrap_or_default(), c.display("state").unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

mod change;
mod client;
mod config;
mod itsm;
mod query;
mod record;
mod request_items;
mod standard_change;

pub use change::ServiceNowChanges;
pub use client::{Client, TOKEN_RENEW_MARGIN, UpstreamMessage};
pub use config::{ServiceNowConfig, SnAuth};
pub use itsm::RequestItemWriteBack;
pub use query::{DisplayValue, Query};
pub use record::Record;
pub use request_items::RequestItems;
