//! Which route a request is for, from its path and the gateway's context alone.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// The routes of the API, found in the path after any stage prefix.
pub(crate) enum Route {
    Collection,
    Session(String),
    Cycle(String),
    Touch(String),
    /// `/principals/{principal}/sessions`, the principal still percent-encoded.
    PrincipalSessions(String),
    /// `/principals/{principal}/sessions/{id}`.
    PrincipalSession(String, String),
    Unknown,
}

impl Route {
    pub(crate) fn of(request: &Request) -> Self {
        // lambda_http's raw path leaves out REST API stages, but an HTTP API's raw path
        // still starts with a named stage.
        let path = request.raw_http_path();
        let path = match gateway_context(request).1 {
            Some(stage) if stage != "$default" => path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(stage))
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .unwrap_or(path),
            _ => path,
        };
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        match segments.as_slice() {
            ["sessions"] => Self::Collection,
            ["sessions", key] => Self::Session((*key).to_owned()),
            ["sessions", key, "cycle"] => Self::Cycle((*key).to_owned()),
            ["sessions", key, "touch"] => Self::Touch((*key).to_owned()),
            ["principals", p, "sessions"] => Self::PrincipalSessions((*p).to_owned()),
            ["principals", p, "sessions", id] => {
                Self::PrincipalSession((*p).to_owned(), (*id).to_owned())
            }
            _ => Self::Unknown,
        }
    }

    pub(crate) fn template(&self) -> &'static str {
        match self {
            Self::Collection => "/sessions",
            Self::Session(_) => "/sessions/{key}",
            Self::Cycle(_) => "/sessions/{key}/cycle",
            Self::Touch(_) => "/sessions/{key}/touch",
            Self::PrincipalSessions(_) => "/principals/{principal}/sessions",
            Self::PrincipalSession(..) => "/principals/{principal}/sessions/{id}",
            Self::Unknown => "unknown",
        }
    }
}

/// The gateway's request id and stage: the stage prefixes an HTTP API's path, and both
/// go into the access log.
pub(crate) fn gateway_context(request: &Request) -> (Option<&str>, Option<&str>) {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        Some(RequestContext::ApiGatewayV1(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        _ => (None, None),
    }
}
