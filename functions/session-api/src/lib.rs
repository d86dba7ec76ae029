//! Session CRUD over HTTP. `handle` is a plain function of (app, request) that tests call
//! directly; `main` only wires it to the Lambda runtime.

mod body;
mod handlers;
mod precondition;
mod problem;
mod request;
mod response;
mod route;

use std::convert::Infallible;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use session_store::{
    AccessLogConfig, AwsEnv, DynamoStore, Ownership, PrincipalRoutes, Principals, SessionKey,
    StoreConfig, invocation_time_left,
};
use tracing::{error, info};

pub use problem::ApiError;
pub use request::{Operation, merge_patch};
use route::{Route, gateway_context};

/// Time kept back from the invocation's deadline to send the answer: DynamoDB calls end
/// this long before Lambda would cut the function off.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// What every request shares: the store, built once per container: DynamoDB in the
/// function, Dynoxide behind the same store in tests.
#[derive(Debug)]
pub struct App<S = DynamoStore> {
    store: S,
    /// Larger bodies are refused unread; twice the data limit leaves room for
    /// whitespace and the envelope around `data`.
    max_body_bytes: usize,
    access_log: AccessLogConfig,
    principal_routes: PrincipalRoutes,
}

impl<S: Principals> App<S> {
    pub fn new(store: S) -> Self {
        let max_body_bytes = store.config().max_session_bytes.saturating_mul(2);
        Self {
            store,
            max_body_bytes,
            access_log: AccessLogConfig::default(),
            principal_routes: PrincipalRoutes::default(),
        }
    }

    /// Whether the routes by principal and a session's `principal` are served (they are
    /// by default).
    pub fn with_principal_routes(mut self, routes: PrincipalRoutes) -> Self {
        self.principal_routes = routes;
        self
    }

    /// Which requests get an access line (every one by default).
    pub fn with_access_log(mut self, access_log: AccessLogConfig) -> Self {
        self.access_log = access_log;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

/// A container's life: the store and the settings built once, then every event answered
/// by [`handler`]. A start-up error ends the container, which Lambda reports.
pub async fn serve((aws, config): (AwsEnv, StoreConfig)) -> Result<(), lambda_http::Error> {
    let store = DynamoStore::new(aws.dynamodb(), config)?;
    let app = App::new(store)
        .with_access_log(AccessLogConfig::from_env()?)
        .with_principal_routes(PrincipalRoutes::from_env()?);
    lambda_http::run(service_fn(|request| handler(&app, request))).await
}

/// The entry point for the Lambda runtime: never fails, every error is a response.
pub async fn handler<S: Principals>(
    app: &App<S>,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    Ok(handle(app, request).await)
}

/// Answers one request and writes its one access-log line: always for an error or a
/// slow request, otherwise for the configured share of requests.
pub async fn handle<S: Principals>(app: &App<S>, request: Request) -> Response<Body> {
    let started = Instant::now();
    let route = Route::of(&request);
    let mut session = None;
    let mut response = match dispatch(app, &request, &route, &mut session).await {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                error!(error = %e, "request failed");
            }
            e.into_response()
        }
    };
    if request.method() == Method::HEAD {
        *response.body_mut() = Body::Empty;
    }
    let latency = started.elapsed();
    let failed = response.status().is_client_error() || response.status().is_server_error();
    // fastrand's thread-local generator, already built for the SDK's retry jitter: no
    // system call per request. `f64()` is below 1.0, so a rate of 1 keeps every line.
    if !failed && latency < app.access_log.slow && fastrand::f64() >= app.access_log.sample_rate {
        return response;
    }
    let (apigw_request_id, stage) = gateway_context(&request);
    info!(
        method = %request.method(),
        route = route.template(),
        status = response.status().as_u16(),
        // Whole microseconds: a float of seconds times 1e3 prints as many as 18
        // characters (`5.7806489999999995`), paid for in every line's log ingestion.
        latency_ms = latency.as_micros() as f64 / 1e3,
        request_id = request.lambda_context_ref().map(|c| c.request_id.as_str()),
        apigw_request_id,
        stage,
        front_door = front_door(&request),
        session = session.as_deref(),
        "request"
    );
    response
}

/// Which front door the request came through. A function URL is always called on its own
/// `<url-id>.lambda-url.<region>.on.aws` domain (a custom domain needs CloudFront in
/// front, which forwards to that domain); any other event of this shape is the HTTP API's.
fn front_door(request: &Request) -> &'static str {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c))
            if c.domain_name
                .as_deref()
                .is_some_and(|d| d.ends_with(".on.aws") && d.contains(".lambda-url.")) =>
        {
            "function_url"
        }
        Some(RequestContext::ApiGatewayV2(_)) => "http_api",
        Some(RequestContext::ApiGatewayV1(_)) => "rest_api",
        _ => "unknown",
    }
}

/// Hex digits of a key's hash in an access line: enough to follow one session, never
/// the key itself.
const LOGGED_KEY_DIGITS: usize = 12;

/// Runs the request's operation on the store, bounded by the invocation's deadline.
/// `session` is the session the access line names: the one asked for, or the new one
/// once a create or a cycle has made it.
async fn dispatch<S: Principals>(
    app: &App<S>,
    request: &Request,
    route: &Route,
    session: &mut Option<String>,
) -> Result<Response<Body>, ApiError> {
    let operation = Operation::of_route(request, route, app.max_body_bytes)?;
    if app.principal_routes == PrincipalRoutes::Disabled {
        refuse_principals(&operation)?;
    }
    let logged = |key: &SessionKey| key.fingerprint(LOGGED_KEY_DIGITS);
    *session = operation.key().map(logged);
    let bounded = answer_by(request).map(|deadline| app.store.until(deadline));
    let store = bounded.as_ref().unwrap_or(&app.store);
    match operation {
        Operation::Create {
            data,
            expiry,
            principal,
        } => {
            let path = request.uri().path();
            let (response, key) = handlers::create(store, path, data, expiry, principal).await?;
            *session = Some(logged(&key));
            Ok(response)
        }
        Operation::Read { key, touch } => handlers::read(store, &key, touch).await,
        Operation::Exists(key) => handlers::exists(store, &key).await,
        Operation::Replace {
            key,
            data,
            expiry,
            owner,
            expected,
        } => handlers::replace(store, &key, data, expiry, owner, expected).await,
        Operation::Patch {
            key,
            patch,
            expected,
        } => handlers::patch(store, &key, &patch, expected).await,
        Operation::Delete { key, expected } => handlers::delete(store, &key, expected).await,
        Operation::Cycle { key, expected } => {
            let (response, key) = handlers::cycle(store, &key, expected).await?;
            *session = Some(logged(&key));
            Ok(response)
        }
        Operation::Touch { key, expected } => handlers::touch(store, &key, expected).await,
        Operation::List {
            principal,
            limit,
            after,
        } => handlers::list(store, &principal, limit, after).await,
        Operation::Revoke { principal, id } => handlers::revoke(store, &principal, &id).await,
        Operation::RevokeAll { principal, except } => {
            handlers::revoke_all(store, &principal, except.as_ref()).await
        }
    }
}

/// With the routes by principal turned off: they are not there, and no session takes a
/// principal from a caller.
fn refuse_principals(operation: &Operation) -> Result<(), ApiError> {
    match operation {
        Operation::List { .. } | Operation::Revoke { .. } | Operation::RevokeAll { .. } => {
            Err(ApiError::NoRoute)
        }
        Operation::Create {
            principal: Some(_), ..
        }
        | Operation::Replace {
            owner: Ownership::Set(_) | Ownership::Clear,
            ..
        } => Err(ApiError::BadRequest(
            "this API takes no principal (SESSION_PRINCIPAL_ROUTES=disabled)".into(),
        )),
        _ => Ok(()),
    }
}

/// The instant by which DynamoDB calls must be over for the answer to reach the caller:
/// the invocation's deadline less [`ANSWER_MARGIN`]. `None` without a deadline, and for
/// one already past when the event arrives ([`invocation_time_left`]).
fn answer_by(request: &Request) -> Option<Instant> {
    let context = request.lambda_context_ref()?;
    let left = invocation_time_left(context.deadline, SystemTime::now())?;
    Some(Instant::now() + left.saturating_sub(ANSWER_MARGIN))
}
