//! The HTTP API: the OpenStack Block Storage v3 API on tiny_http.
//!
//! Each request goes through one pipeline ([`handle`]):
//!
//! 1. a request id `req-<uuid>` is made; it is on every response;
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
pub mod body;
pub mod limits;
pub mod metadata;
pub mod microversion;
pub mod params;
pub mod quotas;
pub mod router;
pub mod services;
pub mod snapshots;
pub mod types;
pub mod versions;
pub mod views;
pub mod volumes;

use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::{json, Value};
use tiny_http::{Header, Method};

use crate::error::{Error, Result};
use crate::volume::{Caller, Core};
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

/// The running HTTP server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    threads: std::sync::atomic::AtomicUsize,
}

impl Server {
    /// Bind the listening socket.
    pub fn bind(addr: SocketAddr) -> Result<Server> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
        // Accepted sockets inherit TCP_NODELAY on Linux: responses go out at once
        // instead of waiting for the client's delayed ACK (a 40 ms stall per request).
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
            .map_err(|e| Error::internal("setting TCP_NODELAY", e))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Internal(format!("listening on {addr} gave no IP address")))?;
        Ok(Server { http: Arc::new(http), addr, threads: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// The address actually bound (with the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve requests on `threads` threads until [`Server::stop`].
    pub fn serve(&self, core: Arc<Core>, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
        self.threads.fetch_add(threads, std::sync::atomic::Ordering::SeqCst);
        (0..threads)
            .map(|i| {
                let http = self.http.clone();
                let core = core.clone();
                let addr = self.addr;
                std::thread::Builder::new()
                    .name(format!("hearth-api-{i}"))
                    .spawn(move || {
                        while let Ok(req) = http.recv() {
                            serve_one(&core, addr, req);
                        }
                    })
                    .expect("spawning an API thread")
            })
            .collect()
    }

    /// Stop accepting requests; the serving threads return.
    pub fn stop(&self) {
        // Each unblock releases one thread waiting in recv.
        for _ in 0..self.threads.load(std::sync::atomic::Ordering::SeqCst) {
            self.http.unblock();
        }
    }
}

fn header<'r>(req: &'r tiny_http::Request, name: &str) -> Option<&'r str> {
    req.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

fn serve_one(core: &Arc<Core>, addr: SocketAddr, mut req: tiny_http::Request) {
    let started = std::time::Instant::now();
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let method = req.method().clone();
    let url = req.url().to_string();
    let version = Version::from_header(header(&req, microversion::HEADER));
    let reply = match catch_unwind(AssertUnwindSafe(|| handle(core, addr, &mut req, version.as_ref().ok().copied()))) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if e.status() >= 500 {
                log::error!("{request_id} {method} {url}: {e}");
            }
            Reply::error(&e)
        }
        Err(_) => {
            log::error!("{request_id} {method} {url}: handler panicked");
            Reply::error(&Error::Internal("handler panicked".into()))
        }
    };
    let shown = version.unwrap_or(microversion::MIN);
    log::info!(
        "{request_id} \"{method} {url}\" status: {} mv: {shown} time: {:.3}ms",
        reply.status,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let has_body = reply.body.is_some();
    let bytes = reply.body.unwrap_or_default();
    let mut resp = tiny_http::Response::from_data(bytes)
        .with_status_code(reply.status)
        // The whole body is at hand: always send Content-Length, never chunks.
        .with_chunked_threshold(usize::MAX);
    let mut add = |k: &str, v: &str| {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    };
    if has_body {
        add("Content-Type", "application/json");
    }
    add(microversion::HEADER, &format!("volume {shown}"));
    add("Vary", microversion::HEADER);
    add("x-openstack-request-id", &request_id);
    for (k, v) in &reply.headers {
        add(k, v);
    }
    if let Err(e) = req.respond(resp) {
        log::debug!("{request_id}: writing the response failed: {e}");
    }
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
    "clusters",
    "resource_filters",
    "default-types",
];

/// The pipeline for one request; `version` is `None` when its header was bad.
fn handle(core: &Arc<Core>, addr: SocketAddr, req: &mut tiny_http::Request, version: Option<Version>) -> Result<Reply> {
    let full = req.url().to_string();
    let (path, query) = full.split_once('?').unwrap_or((&full, ""));
    let query: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let host = header(req, "Host").map(str::to_string).unwrap_or_else(|| addr.to_string());
    let base = format!("http://{host}");
    let segments: Vec<&str> = path.split('/').skip(1).collect();

    // Version documents answer without authentication or a microversion.
    match segments.as_slice() {
        [] | [""] => return versions::root(&base, true),
        ["v3"] | ["v3", ""] => return versions::root(&base, false),
        _ => {}
    }
    let version = match version {
        Some(v) => v,
        None => return Err(Version::from_header(header(req, microversion::HEADER)).unwrap_err()),
    };
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

    let caller = authenticate(core, header(req, "X-Auth-Token"), url_project.as_deref());

    let body = read_body(req, core.config.max_request_body_size)?;
    let method = req.method().clone();
    let mut ctx = Ctx { core, caller, version, query, body, base, url_project, path: path.to_string() };
    router::dispatch(&mut ctx, &method, rest)
}

/// Cinder's noauth: the token is `user:project`, or anything else (or nothing), and
/// the project in the URL wins.
fn authenticate(core: &Core, token: Option<&str>, url_project: Option<&str>) -> Caller {
    let (user, token_project) = match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => match t.split_once(':') {
            Some((u, p)) if !p.is_empty() => (u.to_string(), Some(p.to_string())),
            _ => (t.to_string(), None),
        },
        None => ("admin".to_string(), None),
    };
    let project =
        url_project.map(str::to_string).or(token_project).unwrap_or_else(|| core.config.noauth_default_project.clone());
    let is_admin = core.config.is_admin_project(&project);
    Caller { user_id: user, project_id: project, is_admin }
}

fn read_body(req: &mut tiny_http::Request, max: usize) -> Result<Option<Value>> {
    let too_large = || Error::TooLarge(format!("Request is too large: the body must be at most {max} bytes."));
    if req.body_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    req.as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Invalid(format!("The request body could not be read: {e}.")))?;
    if buf.len() > max {
        return Err(too_large());
    }
    if buf.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    if let Some(ct) = header(req, "Content-Type") {
        let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(ct.is_empty() || ct == "application/json" || ct.ends_with("+json")) {
            return Err(Error::UnsupportedMediaType(format!("Unsupported Content-Type {ct}: send application/json.")));
        }
    }
    serde_json::from_slice(&buf).map(Some).map_err(|e| Error::Invalid(format!("Malformed request body: {e}.")))
}

/// Refuse a method the route does not have.
pub fn bad_method(m: &Method) -> Result<Reply> {
    Err(Error::MethodNotAllowed(format!("The method {m} is not allowed for this resource.")))
}
