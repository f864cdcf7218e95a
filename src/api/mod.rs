//! The HTTP API: the OpenStack Block Storage v3 API over the [`server`].
//!
//! Each request goes through one pipeline ([`handle`]):
//!
//! 1. a request id `req-<uuid>` is made; it is on every response, and the core
//!    gets it with the caller (user messages about work the request starts name it);
//! 2. the microversion is negotiated ([`microversion`]);
//! 3. the path is split into an optional project id and a resource path;
//! 4. the caller is authenticated (`noauth`: the token names `user:project`);
//! 5. the body is read (capped) and parsed as JSON;
//! 6. the [`router`] turns (method, path) into a call of one resource module, which
//!    parses the request into typed values, calls the [`Core`], and renders views;
//! 7. errors become Cinder's fault bodies; a panic becomes a 500, never a dropped
//!    connection.
//!
//! Nothing here touches the store, a backend or the host directly.

pub mod attachments;
pub mod backups;
pub mod body;
pub mod encryption;
pub mod group_snapshots;
pub mod group_types;
pub mod groups;
pub mod limits;
pub mod messages;
pub mod metadata;
pub mod microversion;
pub mod params;
pub mod qos;
pub mod quotas;
pub mod router;
pub mod server;
pub mod services;
pub mod snapshots;
pub mod transfers;
pub mod types;
pub mod versions;
pub mod views;
pub mod volumes;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::auth::{Auth, Presented};
use crate::error::{Error, Result};
use crate::volume::{fleet, Caller, Core};
use microversion::Version;

/// A response before it is written.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body, already serialized, if any.
    pub body: Option<Vec<u8>>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: Some(serde_json::to_vec(&body).unwrap_or_else(|e| {
                log::error!("serializing a response failed: {e}");
                b"{}".to_vec()
            })),
            headers: Vec::new(),
        }
    }

    /// A reply without a body.
    pub fn empty(status: u16) -> Reply {
        Reply { status, body: None, headers: Vec::new() }
    }

    /// The reply for an error: Cinder's `{"<fault>": {"code", "message"}}`.
    pub fn error(e: &Error) -> Reply {
        let status = e.status();
        let mut fault = json!({"code": status, "message": e.client_message()});
        let mut headers = Vec::new();
        if status == 413 {
            fault["retryAfter"] = json!("0");
            headers.push(("Retry-After", "0".to_string()));
        }
        if status == 503 {
            headers.push(("Retry-After", "5".to_string()));
        }
        Reply { status, body: serde_json::to_vec(&json!({ Error::fault_name(status): fault })).ok(), headers }
    }
}

/// What a resource handler sees of its request.
pub struct Ctx<'a> {
    /// The core.
    pub core: &'a Arc<Core>,
    /// Who asks.
    pub caller: Caller,
    /// The negotiated microversion.
    pub version: Version,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// The parsed JSON body.
    pub body: Option<Value>,
    /// `http://host:port`, from the Host header.
    pub base: String,
    /// The project id as it appeared in the URL, if it did.
    pub url_project: Option<String>,
    /// The request's path (for pagination links).
    pub path: String,
}

impl Ctx<'_> {
    /// The first value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter (`True`, `true`, `1`, ...); absent is `false`.
    pub fn flag(&self, key: &str) -> Result<bool> {
        match self.param(key) {
            None => Ok(false),
            Some(v) => body::parse_bool(key, &Value::String(v.to_string())),
        }
    }

    fn prefix(&self) -> String {
        match &self.url_project {
            Some(p) => format!("/{p}"),
            None => String::new(),
        }
    }

    /// The self and bookmark URLs of an object at `path` (e.g. `volumes/<id>`).
    pub fn link_pair(&self, path: &str) -> [String; 2] {
        let p = self.prefix();
        [format!("{}/v3{p}/{path}", self.base), format!("{}{p}/{path}", self.base)]
    }

    /// The `next` link of a full page: this request's URL with `marker` replaced.
    pub fn next_link(&self, marker: &str) -> Value {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.query.iter().filter(|(k, _)| k != "marker") {
            q.append_pair(k, v);
        }
        q.append_pair("marker", marker);
        json!([{"rel": "next", "href": format!("{}{}?{}", self.base, self.path, q.finish())}])
    }
}

/// An HTTP method, as the router matches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// Anything else.
    Other(String),
}

impl From<&hyper::Method> for Method {
    fn from(m: &hyper::Method) -> Method {
        match *m {
            hyper::Method::GET => Method::Get,
            hyper::Method::HEAD => Method::Head,
            hyper::Method::POST => Method::Post,
            hyper::Method::PUT => Method::Put,
            hyper::Method::DELETE => Method::Delete,
            hyper::Method::PATCH => Method::Patch,
            _ => Method::Other(m.as_str().to_string()),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Other(m) => m,
        })
    }
}

/// The API as the [`server`] sees it: a [`Handler`](server::Handler) over the core,
/// with the authentication strategy in force.
pub struct Api {
    core: Arc<Core>,
    auth: Arc<Auth>,
}

impl Api {
    /// The API over a core.
    pub fn new(core: Arc<Core>, auth: Arc<Auth>) -> Api {
        Api { core, auth }
    }
}

impl server::Handler for Api {
    fn handle(&self, req: server::Request) -> server::Response {
        serve_one(&self.core, &self.auth, req)
    }

    fn refuse(&self, head: &hyper::http::request::Parts, err: Error) -> server::Response {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        let shown = Version::from_header(head.headers.get(microversion::HEADER).and_then(|v| v.to_str().ok()))
            .unwrap_or(microversion::MIN);
        log::info!("{request_id} \"{} {}\" status: {} refused: {err}", head.method, head.uri, err.status());
        render(Reply::error(&err), &request_id, shown)
    }
}

/// The `metrics_listen` listener: `GET /metrics` without authentication (the
/// listener's address is its access control), nothing else.
pub struct MetricsOnly {
    core: Arc<Core>,
}

impl MetricsOnly {
    /// The handler over a core.
    pub fn new(core: Arc<Core>) -> MetricsOnly {
        MetricsOnly { core }
    }
}

impl server::Handler for MetricsOnly {
    fn handle(&self, req: server::Request) -> server::Response {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        let reply = match (Method::from(&req.method), req.uri.path()) {
            (Method::Get, "/metrics") => metrics_reply(&self.core),
            (_, "/metrics") => bad_method(&Method::from(&req.method)),
            (_, path) => Err(Error::NotFound(format!(
                "The resource {path} could not be found: this listener serves only GET /metrics."
            ))),
        };
        let reply = reply.unwrap_or_else(|e| Reply::error(&e));
        log::debug!("{request_id} \"{} {}\" status: {} (metrics listener)", req.method, req.uri, reply.status);
        render(reply, &request_id, microversion::MIN)
    }

    fn refuse(&self, head: &hyper::http::request::Parts, err: Error) -> server::Response {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        log::info!("{request_id} \"{} {}\" status: {} refused: {err}", head.method, head.uri, err.status());
        render(Reply::error(&err), &request_id, microversion::MIN)
    }
}

fn serve_one(core: &Arc<Core>, auth: &Auth, req: server::Request) -> server::Response {
    let started = std::time::Instant::now();
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    // Every log line this request causes names it (see `crate::logging`).
    let _scope = crate::logging::RequestScope::enter(Some(request_id.as_str().into()));
    let method = Method::from(&req.method);
    let url = req.uri.to_string();
    let version = Version::from_header(req.header(microversion::HEADER));
    let result = match handle_caught(core, auth, &req, version.as_ref().ok().copied(), &request_id) {
        // Another node's disks: that node runs the whole request (nothing of it was
        // recorded here), and its answer is this one's.
        Err(Error::Elsewhere { node, .. }) if core.hands_over() => hand_over(core, &req, &node, &request_id),
        r => r,
    };
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                log::error!("{request_id} {method} {url}: {e}");
            }
            Reply::error(&e)
        }
    };
    let mut reply = reply;
    if reply.status == 401 {
        if let Some(challenge) = auth.challenge() {
            reply.headers.push(("WWW-Authenticate", challenge.to_string()));
        }
    }
    let shown = version.unwrap_or(microversion::MIN);
    let took = started.elapsed();
    crate::metrics::metrics().request(&method.to_string(), &route_label(req.uri.path()), reply.status, took);
    log::info!(
        "{request_id} \"{method} {url}\" status: {} mv: {shown} time: {:.3}ms",
        reply.status,
        took.as_secs_f64() * 1000.0
    );
    render(reply, &request_id, shown)
}

/// [`handle`], a panic in it becoming a 500.
fn handle_caught(
    core: &Arc<Core>,
    auth: &Auth,
    req: &server::Request,
    version: Option<Version>,
    request_id: &str,
) -> Result<Reply> {
    catch_unwind(AssertUnwindSafe(|| handle(core, auth, req, version, request_id))).unwrap_or_else(|_| {
        log::error!("{request_id} {} {}: handler panicked", req.method, req.uri);
        Err(Error::Internal("handler panicked".into()))
    })
}

/// The headers of a reply that a handed request's answer carries back.
const HANDED_HEADERS: &[&str] = &["Content-Type", "Location", "Retry-After", "WWW-Authenticate"];

/// Hand `req` to node `node`, which owns the pool it needs, and take its answer as
/// this request's ([`crate::volume::fleet`]).
fn hand_over(core: &Arc<Core>, req: &server::Request, node: &str, request_id: &str) -> Result<Reply> {
    let call = fleet::Call {
        request_id: request_id.to_string(),
        method: req.method.to_string(),
        uri: req.uri.to_string(),
        headers: req
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: String::from_utf8(req.body.to_vec())
            .map_err(|_| Error::Invalid("Invalid input received: the body is not UTF-8 text.".into()))?,
        tls: req.tls,
    };
    let answer = core.hand_to(node, &call)?;
    let headers = answer
        .headers
        .into_iter()
        .filter_map(|(k, v)| HANDED_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&k)).map(|h| (*h, v)))
        .collect();
    Ok(Reply { status: answer.status, body: answer.body.map(String::into_bytes), headers })
}

/// Run requests other nodes hand to this one through the same pipeline as its own
/// (authenticating their callers again); see [`crate::volume::fleet`].
pub fn serve_handed(core: &Arc<Core>, auth: Arc<Auth>) -> Result<()> {
    let c = core.clone();
    core.serve_handed(Arc::new(move |call: fleet::Call| {
        let answer = |reply: Reply| fleet::Answer {
            status: reply.status,
            headers: reply.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            body: reply.body.map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        let _scope = crate::logging::RequestScope::enter(Some(call.request_id.as_str().into()));
        let mut headers = hyper::HeaderMap::new();
        for (k, v) in &call.headers {
            if let (Ok(k), Ok(v)) =
                (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(v))
            {
                headers.append(k, v);
            }
        }
        let (Ok(method), Ok(uri)) = (call.method.parse::<hyper::Method>(), call.uri.parse::<hyper::Uri>()) else {
            return answer(Reply::error(&Error::Invalid("Invalid input received: a malformed handed request.".into())));
        };
        let req = server::Request { method, uri, headers, body: call.body.into_bytes().into(), tls: call.tls };
        let version = Version::from_header(req.header(microversion::HEADER));
        let reply = handle_caught(&c, &auth, &req, version.ok(), &call.request_id).unwrap_or_else(|e| {
            if e.status() >= 500 {
                log::error!("{} {} {} (handed): {e}", call.request_id, req.method, req.uri);
            }
            Reply::error(&e)
        });
        log::info!("{} \"{} {}\" status: {} (handed)", call.request_id, req.method, req.uri, reply.status);
        answer(reply)
    }))
}

/// The response for a reply: its body, and the headers every response carries.
fn render(reply: Reply, request_id: &str, shown: Version) -> server::Response {
    let has_body = reply.body.is_some();
    let mut resp =
        hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(reply.body.unwrap_or_default())));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    let mut add = |k: &str, v: &str| match (
        hyper::header::HeaderName::from_bytes(k.as_bytes()),
        hyper::header::HeaderValue::from_str(v),
    ) {
        (Ok(k), Ok(v)) => {
            headers.append(k, v);
        }
        _ => log::error!("{request_id}: the header {k:?} could not be sent"),
    };
    if has_body && !reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Type")) {
        add("Content-Type", "application/json");
    }
    add(microversion::HEADER, &format!("volume {shown}"));
    add("Vary", microversion::HEADER);
    add("x-openstack-request-id", request_id);
    for (k, v) in &reply.headers {
        add(k, v);
    }
    resp
}

/// Resource names that follow `/v3/` directly when the URL has no project id.
const RESOURCES: &[&str] = &[
    "volumes",
    "types",
    "snapshots",
    "attachments",
    "backups",
    "limits",
    "os-quota-sets",
    "os-quota-class-sets",
    "scheduler-stats",
    "os-availability-zone",
    "os-services",
    "extensions",
    "messages",
    "groups",
    "group_types",
    "group_snapshots",
    "qos-specs",
    "os-volume-transfer",
    "volume-transfers",
    "workers",
    "manageable_volumes",
    "manageable_snapshots",
    "os-hosts",
    "capabilities",
    "clusters",
    "resource_filters",
    "default-types",
];

/// The pipeline for one request; `version` is `None` when its header was bad.
fn handle(
    core: &Arc<Core>,
    auth: &Auth,
    req: &server::Request,
    version: Option<Version>,
    request_id: &str,
) -> Result<Reply> {
    let path = req.uri.path();
    let query: Vec<(String, String)> = form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let host = req.header("Host").map(str::to_string).unwrap_or_else(|| core.config.listen.to_string());
    let base = format!("{}://{host}", if req.tls { "https" } else { "http" });
    let segments: Vec<&str> = path.split('/').skip(1).collect();

    // Version documents and the OpenAPI document answer without authentication or a
    // microversion.
    match segments.as_slice() {
        [] | [""] => return versions::root(&base, true),
        ["v3"] | ["v3", ""] => return versions::root(&base, false),
        ["openapi.json"] => return openapi(&req.method),
        _ => {}
    }
    let version = match version {
        Some(v) => v,
        None => return Err(Version::from_header(req.header(microversion::HEADER)).unwrap_err()),
    };
    if segments.as_slice() == ["metrics"] {
        return metrics(core, auth, req, request_id);
    }
    let ["v3", rest @ ..] = segments.as_slice() else {
        return Err(Error::NotFound(format!("The resource {path} could not be found.")));
    };
    let (url_project, rest) = match rest {
        [first, tail @ ..] if !RESOURCES.contains(first) && !first.is_empty() => (Some(first.to_string()), tail),
        _ => (None, rest),
    };
    if rest.is_empty() {
        return Err(Error::NotFound(format!("The resource {path} could not be found.")));
    }

    let presented = Presented {
        token: req.header("X-Auth-Token"),
        service_token: req.header("X-Service-Token"),
        authorization: req.header("Authorization"),
    };
    let creds = auth.authenticate(presented, url_project.as_deref())?;
    if let (Some(url), Some(own), false) = (&url_project, &creds.project_id, auth.url_names_project()) {
        if url != own {
            return Err(Error::Invalid(format!(
                "Malformed request URL: the project in the URL ({url}) is not the project of the token ({own})."
            )));
        }
    }
    let mut caller = Caller::new(creds, core.policy.clone())?;
    caller.request_id = request_id.to_string();

    let body = parse_body(req)?;
    let method = Method::from(&req.method);
    let mut ctx = Ctx { core, caller, version, query, body, base, url_project, path: path.to_string() };
    router::dispatch(&mut ctx, &method, rest)
}

/// The OpenAPI 3.1 document of everything served here (`docs/openapi.json`, made by
/// `scripts/openapi/gen.py`; `tests/openapi/run.sh` holds responses to it).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// `GET /openapi.json`: [`OPENAPI`].
fn openapi(method: &hyper::Method) -> Result<Reply> {
    if Method::from(method) != Method::Get {
        return bad_method(&Method::from(method));
    }
    Ok(Reply {
        status: 200,
        body: Some(OPENAPI.as_bytes().to_vec()),
        headers: vec![("Content-Type", "application/json".to_string())],
    })
}

/// `GET /metrics`: everything [`crate::metrics`] has, for admins (`hearth:metrics`).
fn metrics(core: &Arc<Core>, auth: &Auth, req: &server::Request, request_id: &str) -> Result<Reply> {
    let presented = Presented {
        token: req.header("X-Auth-Token"),
        service_token: req.header("X-Service-Token"),
        authorization: req.header("Authorization"),
    };
    let creds = auth.authenticate(presented, None)?;
    let mut caller = Caller::new(creds, core.policy.clone())?;
    caller.request_id = request_id.to_string();
    caller.authorize_own(crate::policy::rules::METRICS)?;
    if Method::from(&req.method) != Method::Get {
        return bad_method(&Method::from(&req.method));
    }
    metrics_reply(core)
}

/// The metrics as a reply (also what the `metrics_listen` listener answers).
pub fn metrics_reply(core: &Core) -> Result<Reply> {
    let text = crate::metrics::render(core)?;
    Ok(Reply {
        status: 200,
        body: Some(text.into_bytes()),
        headers: vec![("Content-Type", crate::metrics::CONTENT_TYPE.to_string())],
    })
}

/// The route template of a request path, for metrics: the project goes, ids, names
/// and keys become `{id}` (only [`router::LITERALS`] stay), so the label has few
/// values whatever clients send.
pub fn route_label(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let rest = match segments.as_slice() {
        [] | [""] => return "/".into(),
        ["v3"] | ["v3", ""] => return "/v3".into(),
        ["metrics"] => return "/metrics".into(),
        ["openapi.json"] => return "/openapi.json".into(),
        ["v3", rest @ ..] => rest,
        _ => return "{unknown}".into(),
    };
    let rest = match rest {
        [first, tail @ ..] if !RESOURCES.contains(first) && !first.is_empty() => tail,
        _ => rest,
    };
    match rest.split_first() {
        Some((first, tail)) if RESOURCES.contains(first) => {
            let mut out = format!("/v3/{first}");
            for s in tail {
                out.push('/');
                out.push_str(if router::LITERALS.contains(s) { s } else { "{id}" });
            }
            out
        }
        _ => "/v3/{unknown}".into(),
    }
}

/// The body as JSON; `None` when it is empty (or only whitespace).
fn parse_body(req: &server::Request) -> Result<Option<Value>> {
    if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    if let Some(ct) = req.header("Content-Type") {
        let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(ct.is_empty() || ct == "application/json" || ct.ends_with("+json")) {
            return Err(Error::UnsupportedMediaType(format!("Unsupported Content-Type {ct}: send application/json.")));
        }
    }
    serde_json::from_slice(&req.body).map(Some).map_err(|e| Error::Invalid(format!("Malformed request body: {e}.")))
}

/// Refuse a method the route does not have.
pub fn bad_method(m: &Method) -> Result<Reply> {
    Err(Error::MethodNotAllowed(format!("The method {m} is not allowed for this resource.")))
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_are_templates_without_projects_or_ids() {
        let p = "ab1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f";
        let id = "5a4bd6b7-0000-4000-8000-000000000000";
        assert_eq!(route_label("/"), "/");
        assert_eq!(route_label("/v3/"), "/v3");
        assert_eq!(route_label("/metrics"), "/metrics");
        assert_eq!(route_label("/openapi.json"), "/openapi.json");
        assert_eq!(route_label(&format!("/v3/{p}/volumes")), "/v3/volumes");
        assert_eq!(route_label("/v3/volumes/detail"), "/v3/volumes/detail");
        assert_eq!(route_label(&format!("/v3/{p}/volumes/{id}/action")), "/v3/volumes/{id}/action");
        assert_eq!(route_label(&format!("/v3/{p}/types/{id}/extra_specs/key")), "/v3/types/{id}/extra_specs/{id}");
        assert_eq!(
            route_label(&format!("/v3/{p}/os-services/disable-log-reason")),
            "/v3/os-services/disable-log-reason"
        );
        assert_eq!(route_label(&format!("/v3/{p}/nonsense/{id}")), "/v3/{unknown}");
        assert_eq!(route_label(&format!("/v3/{p}")), "/v3/{unknown}");
        assert_eq!(route_label("/etc/passwd"), "{unknown}");
    }
}
