//! The HTTP listener: connections, TLS, HTTP/1.1, and the limits that keep the API up.
//!
//! A request goes through these steps:
//!
//! 1. the connection is accepted on smol; past [`Limits::max_connections`] open ones it
//!    is closed at once. With TLS configured its handshake must finish within
//!    [`Limits::read_timeout`];
//! 2. hyper reads the request line and headers: at most [`Limits::max_header_size`]
//!    bytes (more is a 431), within [`Limits::read_timeout`] (a client that sends one
//!    byte a second is dropped; the same timer closes idle keep-alive connections);
//! 3. the body is read whole: more than [`Limits::max_body_size`] bytes is a 413, a
//!    body not complete within [`Limits::read_timeout`] of the headers is a 408 and the
//!    connection is closed;
//! 4. when [`Limits::max_in_flight`] requests are already being handled or waiting for
//!    a worker, the answer is a 503 with `Retry-After` at once; otherwise the request
//!    goes, with a reply channel of its own, to one of a fixed set of worker threads,
//!    which run the blocking [`Handler`] and send the response back.
//!
//! Requests refused in steps 3 and 4 are answered by [`Handler::refuse`], so that they
//! carry the same fault body and headers as every other answer.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use smol::Async;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::error::{Error, Result};

/// The bounds the server enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes of request line and headers.
    pub max_header_size: usize,
    /// Bytes of body.
    pub max_body_size: usize,
    /// Time to send a request's headers, and again its body; idle keep-alive
    /// connections close after it too.
    pub read_timeout: Duration,
    /// Requests handled or waiting for a worker at once.
    pub max_in_flight: usize,
    /// Open connections.
    pub max_connections: usize,
}

/// A request, read whole.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: hyper::Method,
    /// The request target (path and query).
    pub uri: hyper::Uri,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Whether it came over TLS.
    pub tls: bool,
}

impl Request {
    /// The first value of a header, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response, whole.
pub type Response = hyper::Response<Full<Bytes>>;

/// What the server runs for each request.
pub trait Handler: Send + Sync + 'static {
    /// Answer a request (on a worker thread; may block).
    fn handle(&self, req: Request) -> Response;
    /// Answer a request refused before it reached a worker (too large, too slow,
    /// too many in flight). Must not block.
    fn refuse(&self, head: &hyper::http::request::Parts, err: Error) -> Response;
}

/// TLS for the listener: a certificate chain and its key, PEM files.
pub fn tls_acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Internal(format!("ssl_cert_file {}: {e}", cert_file.display())))?;
    if certs.is_empty() {
        return Err(Error::Internal(format!("ssl_cert_file {}: no certificate in the file", cert_file.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| Error::Internal(format!("ssl_key_file {}: {e}", key_file.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::Internal(format!("ssl_cert_file and ssl_key_file do not make a TLS setup: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A bound listener, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

/// A serving listener; [`Running::stop`] ends it.
pub struct Running {
    stop: smol::channel::Sender<()>,
    jobs: smol::channel::Sender<Job>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

struct Job {
    req: Request,
    reply: smol::channel::Sender<Response>,
}

/// What every connection task shares.
struct Shared {
    handler: Arc<dyn Handler>,
    limits: Limits,
    jobs: smol::channel::Sender<Job>,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Bind the listening socket.
    pub fn bind(addr: SocketAddr, tls: Option<TlsAcceptor>) -> Result<Server> {
        let listener = TcpListener::bind(addr).map_err(|e| Error::Internal(format!("cannot listen on {addr}: {e}")))?;
        // Accepted sockets inherit TCP_NODELAY on Linux: responses go out at once
        // instead of waiting for the client's delayed ACK (a 40 ms stall per request).
        nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::TcpNoDelay, &true)
            .map_err(|e| Error::internal("setting TCP_NODELAY", e))?;
        let addr = listener.local_addr().map_err(|e| Error::internal("reading the listening address", e))?;
        Ok(Server { listener, addr, tls })
    }

    /// The address actually bound (with the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve with `threads` worker threads until [`Running::stop`].
    pub fn serve(self, handler: Arc<dyn Handler>, threads: usize, limits: Limits) -> Result<Running> {
        let listener = Async::new(self.listener).map_err(|e| Error::internal("making the listener async", e))?;
        let (jobs_tx, jobs_rx) = smol::channel::unbounded::<Job>();
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = jobs_rx.clone();
            let handler = handler.clone();
            let w = std::thread::Builder::new()
                .name(format!("hearth-api-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv_blocking() {
                        let resp = handler.handle(job.req);
                        // The client may have gone; nothing to do then.
                        let _ = job.reply.try_send(resp);
                    }
                })
                .map_err(|e| Error::internal("starting an API thread", e))?;
            workers.push(w);
        }
        let shared = Arc::new(Shared {
            handler,
            limits,
            jobs: jobs_tx.clone(),
            in_flight: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            tls: self.tls,
        });
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let ex = Arc::new(smol::Executor::new());
        // Two I/O threads: TLS handshakes and header parsing; the handlers run on the workers.
        for i in 0..2 {
            let ex = ex.clone();
            let stop = stop_rx.clone();
            std::thread::Builder::new()
                .name(format!("hearth-io-{i}"))
                .spawn(move || smol::block_on(ex.run(async move { while stop.recv().await.is_ok() {} })))
                .map_err(|e| Error::internal("starting an I/O thread", e))?;
        }
        let ex2 = ex.clone();
        ex.spawn(async move {
            loop {
                let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
                    let _ = stop_rx.recv().await;
                    None
                })
                .await;
                match accepted {
                    None => break,
                    Some(Ok((stream, _peer))) => {
                        let shared = shared.clone();
                        if shared.connections.fetch_add(1, Ordering::SeqCst) >= shared.limits.max_connections {
                            shared.connections.fetch_sub(1, Ordering::SeqCst);
                            log::warn!("closing a new connection: {} are open already", shared.limits.max_connections);
                            continue;
                        }
                        ex2.spawn(async move {
                            serve_connection(&shared, stream).await;
                            shared.connections.fetch_sub(1, Ordering::SeqCst);
                        })
                        .detach();
                    }
                    Some(Err(e)) => {
                        // EMFILE and friends: wait a little instead of spinning.
                        log::error!("accepting a connection failed: {e}");
                        smol::Timer::after(Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .detach();
        Ok(Running { stop: stop_tx, jobs: jobs_tx, workers })
    }
}

impl Running {
    /// Stop accepting connections, let the workers finish the requests they hold, and
    /// wait for them.
    pub fn stop(self) {
        self.stop.close();
        self.jobs.close();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

async fn serve_connection(shared: &Arc<Shared>, stream: Async<TcpStream>) {
    let limits = &shared.limits;
    let svc_shared = shared.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(SmolTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_header_size(limits.max_header_size)
        .max_buf_size(limits.max_header_size.max(8192) + 8192);
    let tls = shared.tls.is_some();
    let service = hyper::service::service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(answer(&shared, req, tls).await) }
    });
    let result = match &shared.tls {
        None => builder.serve_connection(FuturesIo::new(stream), service).await,
        Some(acceptor) => {
            let handshake = smol::future::or(async { Some(acceptor.accept(stream).await) }, async {
                smol::Timer::after(limits.read_timeout).await;
                None
            });
            match handshake.await {
                Some(Ok(tls_stream)) => builder.serve_connection(FuturesIo::new(tls_stream), service).await,
                Some(Err(e)) => {
                    log::debug!("TLS handshake failed: {e}");
                    return;
                }
                None => {
                    log::debug!("TLS handshake timed out");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        log::debug!("connection ended: {e}");
    }
}

/// Read the body, hand the request to a worker, and wait for its answer.
async fn answer(shared: &Shared, req: hyper::Request<Incoming>, tls: bool) -> Response {
    let (head, body) = req.into_parts();
    let limits = &shared.limits;
    let declared = head
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large =
        || Error::TooLarge(format!("Request is too large: the body must be at most {} bytes.", limits.max_body_size));
    if declared.is_some_and(|n| n > limits.max_body_size as u64) {
        return close(shared.handler.refuse(&head, too_large()));
    }
    let read = smol::future::or(async { Some(Limited::new(body, limits.max_body_size).collect().await) }, async {
        smol::Timer::after(limits.read_timeout).await;
        None
    });
    let body = match read.await {
        Some(Ok(collected)) => collected.to_bytes(),
        Some(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return close(shared.handler.refuse(&head, too_large()));
        }
        Some(Err(e)) => {
            log::debug!("reading a request body failed: {e}");
            return close(
                shared.handler.refuse(&head, Error::Invalid(format!("The request body could not be read: {e}."))),
            );
        }
        None => {
            return close(shared.handler.refuse(
                &head,
                Error::Timeout(format!(
                    "The request body did not arrive within {} seconds.",
                    limits.read_timeout.as_secs_f64()
                )),
            ));
        }
    };
    if shared.in_flight.fetch_add(1, Ordering::SeqCst) >= limits.max_in_flight {
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        return shared.handler.refuse(
            &head,
            Error::Unavailable(format!(
                "hearth is handling {} requests already; retry in a moment.",
                limits.max_in_flight
            )),
        );
    }
    let (reply_tx, reply_rx) = smol::channel::bounded(1);
    let req = Request { method: head.method.clone(), uri: head.uri.clone(), headers: head.headers.clone(), body, tls };
    let sent = shared.jobs.send(Job { req, reply: reply_tx }).await;
    let resp = match sent {
        Ok(()) => reply_rx.recv().await.ok(),
        Err(_) => None,
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp.unwrap_or_else(|| shared.handler.refuse(&head, Error::Unavailable("hearth is stopping.".into())))
}

/// Ask hyper to close the connection after this response (the rest of the body, if
/// any, is not read).
fn close(mut resp: Response) -> Response {
    resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    resp
}
