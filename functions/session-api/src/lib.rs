//! Session CRUD over HTTP. `handle` is a plain function of (app, request) that tests call
//! directly; `main` only wires it to the Lambda runtime.

mod problem;
mod request;
mod response;

use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use session_store::{
    AccessLogConfig, DynamoStore, Expected, Principals, SessionKey, StoreError,
    invocation_time_left,
};
use tracing::{error, info};

pub use problem::ApiError;
pub use request::{Operation, merge_patch};
use request::{Precondition, Route};
use response::{empty, listing_response, revocation_response, session_response};

const JSON: &str = "application/json";
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
}

impl<S: Principals> App<S> {
    pub fn new(store: S) -> Self {
        let max_body_bytes = store.config().max_session_bytes.saturating_mul(2);
        Self {
            store,
            max_body_bytes,
            access_log: AccessLogConfig::default(),
        }
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

pub(crate) fn gateway_context(request: &Request) -> (Option<&str>, Option<&str>) {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        Some(RequestContext::ApiGatewayV1(c)) => (c.request_id.as_deref(), c.stage.as_deref()),
        _ => (None, None),
    }
}

async fn dispatch<S: Principals>(
    app: &App<S>,
    request: &Request,
    route: &Route,
    session: &mut Option<String>,
) -> Result<Response<Body>, ApiError> {
    let operation = Operation::of_route(request, route, app.max_body_bytes)?;
    *session = operation.key().map(|k| k.fingerprint(12));
    let bounded = answer_by(request).map(|deadline| app.store.until(deadline));
    let store = bounded.as_ref().unwrap_or(&app.store);
    let answer = match operation {
        Operation::Create {
            data,
            expiry,
            principal,
        } => {
            let created = store.create_owned(data, expiry, principal).await?;
            *session = Some(created.key.fingerprint(12));
            let location = format!("{}/{}", request.uri().path(), created.key.as_str());
            let mut response = session_response(StatusCode::CREATED, &created);
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(response);
        }
        Operation::Cycle { key, expected } => {
            let cycled =
                on_condition(store, &key, expected, |x| Box::pin(store.cycle(&key, x))).await?;
            *session = Some(cycled.key.fingerprint(12));
            cycled
        }
        Operation::Touch { key, expected } => {
            on_condition(store, &key, expected, |x| Box::pin(store.touch(&key, x))).await?
        }
        Operation::Read { key, touch: true } => store.load_and_touch(&key).await?,
        Operation::Read { key, touch: false } => store.load(&key).await?,
        Operation::Exists(key) => {
            if store.exists(&key).await? {
                return Ok(empty(StatusCode::OK));
            }
            return Err(session_store::StoreError::NotFound.into());
        }
        Operation::Delete { key, expected } => {
            on_condition(store, &key, expected, |x| Box::pin(store.delete(&key, x))).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        Operation::Replace {
            key,
            data,
            expiry,
            owner,
            expected,
        } => {
            on_condition(store, &key, expected, |x| {
                Box::pin(store.replace_owned(&key, data.clone(), expiry, owner.clone(), x))
            })
            .await?
        }
        Operation::List {
            principal,
            limit,
            after,
        } => {
            let page = store.list(&principal, limit, after).await?;
            return Ok(listing_response(&principal, &page));
        }
        Operation::Revoke { principal, id } => {
            store.revoke(&principal, &id).await?;
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        // The one route where running out of time is no 503: the work done stands, and
        // the same call continues it under the same watermark.
        Operation::RevokeAll { principal, except } => {
            let done = store.revoke_all(&principal, except.as_ref()).await?;
            return Ok(revocation_response(&done));
        }
        Operation::Patch {
            key,
            patch,
            expected,
        } => {
            on_condition(store, &key, expected, |x| {
                Box::pin(store.update(&key, x, |data| {
                    merge_patch(data, &patch);
                    Ok(())
                }))
            })
            .await?
        }
    };
    Ok(session_response(StatusCode::OK, &answer))
}

/// A store call under way.
type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Tries of a write whose `If-Match` lists several tags, when the session moves from
/// one listed state to another between the read and the write.
const LIST_ATTEMPTS: usize = 3;

/// Runs `write` under the request's `If-Match`. A single tag (or `*`) goes to the store
/// as the write's own demand. A list of several tags is true when the session is in any
/// of those states: the current tag is read, and the write demands exactly that one, so
/// it succeeds only if the session is still in a listed state when written.
async fn on_condition<'a, S: Principals, T>(
    store: &S,
    key: &SessionKey,
    precondition: Option<Precondition>,
    write: impl Fn(Option<Expected>) -> Pending<'a, T>,
) -> Result<T, StoreError> {
    let listed = match precondition {
        None => return write(None).await,
        Some(Precondition::Exists) => return write(Some(Expected::Exists)).await,
        Some(Precondition::OneOf(tags)) => tags,
    };
    match listed.as_slice() {
        [] => return Err(StoreError::VersionConflict),
        [only] => return write(Some(Expected::Tag(*only))).await,
        _ => {}
    }
    for _ in 0..LIST_ATTEMPTS {
        let current = match store.load(key).await {
            Err(StoreError::NotFound) => return Err(StoreError::VersionConflict),
            other => other?.meta.tag(),
        };
        if !listed.contains(&current) {
            return Err(StoreError::VersionConflict);
        }
        match write(Some(Expected::Tag(current))).await {
            Err(StoreError::VersionConflict) => continue,
            done => return done,
        }
    }
    Err(StoreError::Contention)
}

/// The instant by which DynamoDB calls must be over for the answer to reach the caller:
/// the invocation's deadline less [`ANSWER_MARGIN`]. `None` without a deadline, and for
/// one already past when the event arrives ([`invocation_time_left`]).
fn answer_by(request: &Request) -> Option<Instant> {
    let context = request.lambda_context_ref()?;
    let left = invocation_time_left(context.deadline, SystemTime::now())?;
    Some(Instant::now() + left.saturating_sub(ANSWER_MARGIN))
}
