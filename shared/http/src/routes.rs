//! The route table: every route of every function is added here with its method, path and who may
//! call it, so the scope check cannot be forgotten on a route and the table can be compared with
//! the OpenAPI document and template.yaml.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodFilter, on};
use domain::config::{ApiTokens, Scope};
use domain::usecases::Services;

use crate::auth::{require_scope, require_scope_or_auditor};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No header: the route's own path token is the credential (approval links), or it serves
    /// nothing private (health, the OpenAPI document).
    Public,
    /// A bearer token of this scope, checked before the handler runs.
    Scope(Scope),
    /// The handler checks the caller's own proof (a signature or a shared secret), or a bearer
    /// token of this scope.
    SignedOr(Scope),
    /// A GitLab CI/CD ID token (verified by the handler), or, where static tokens are allowed, a
    /// bearer token of this scope.
    IdTokenOr(Scope),
    /// GitLab's webhook secret in `X-Gitlab-Token` (checked by the handler).
    GitLabWebhookToken,
    /// An auditor's session (the `gatehouse_audit_session` cookie of a sign-in on the audit
    /// page, by someone listed in `GATEHOUSE_AUDITORS`), or a bearer token of this scope; checked
    /// before the handler runs. A bearer token, when one is sent, decides alone.
    AuditorSessionOr(Scope),
}

/// One route as the table records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    /// axum's syntax: `/v1/requests/{id}`.
    pub path: &'static str,
    pub access: Access,
}

/// A function's routes being built: the axum router and the table that describes it.
pub struct Routes<S = ()> {
    router: Router<S>,
    specs: Vec<RouteSpec>,
    tokens: ApiTokens,
    /// Where auditors' sessions are looked up (`AuditorSessionOr` routes).
    sessions: Option<Services>,
}

/// A function's finished routes.
pub struct Mounted {
    pub router: Router,
    pub specs: Vec<RouteSpec>,
}

impl Mounted {
    pub fn merge(mut self, other: Mounted) -> Mounted {
        self.router = self.router.merge(other.router);
        self.specs.extend(other.specs);
        self
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new(tokens: ApiTokens) -> Self {
        Routes { router: Router::new(), specs: Vec::new(), tokens, sessions: None }
    }

    /// Lets `AuditorSessionOr` routes look auditors' sessions up in `services`.
    pub fn with_auditor_sessions(mut self, services: Services) -> Self {
        self.sessions = Some(services);
        self
    }

    /// Adds `method path` answered by `handler`; a `Scope` route gets the bearer check first, an
    /// `AuditorSessionOr` route the bearer or session check. GET
    /// routes answer HEAD too, as axum does.
    pub fn add<H, T>(mut self, method: Method, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard HTTP method");
        let mut route = on(filter, handler);
        match access {
            Access::Scope(scope) => {
                route = route.route_layer(middleware::from_fn_with_state((self.tokens.clone(), scope), require_scope));
            }
            Access::AuditorSessionOr(scope) => {
                // A wiring mistake, found when the function starts: never a route left open.
                let services = self.sessions.clone().expect("Routes::with_auditor_sessions before an auditor route");
                route = route.route_layer(middleware::from_fn_with_state(
                    (self.tokens.clone(), scope, services),
                    require_scope_or_auditor,
                ));
            }
            Access::Public | Access::SignedOr(_) | Access::IdTokenOr(_) | Access::GitLabWebhookToken => {}
        }
        self.router = self.router.route(path, route);
        self.specs.push(RouteSpec { method, path, access });
        self
    }

    pub fn with_state(self, state: S) -> Mounted {
        Mounted { router: self.router.with_state(state), specs: self.specs }
    }
}
