//! The S3 backup target: a backup repository's objects in a bucket of any
//! S3-compatible object store (AWS, Ceph RGW, MinIO, Garage, Swift's s3api).
//!
//! An [`S3Target`] maps each key of the [`Target`] trait to one object of the bucket
//! (path-style URLs: `<endpoint>/<bucket>/<key>`, so no DNS name per bucket is needed).
//! Requests are signed with AWS Signature Version 4 by `rusty-s3` (presigned URLs,
//! which sign the headers but not the payload) and sent by a blocking `ureq` agent;
//! no async runtime is involved. The payload's integrity comes from `Content-MD5`
//! (`backup_s3_md5_validation`), which the store checks before it stores anything.
//!
//! How a call behaves:
//!
//! 1. Every request has a connect timeout, an idle timeout (the longest pause while
//!    sending or receiving) and an overall one, which grows by a second per MiB of
//!    the request's body ([`S3Timeouts`]; a GET of an object larger than the overall
//!    limit allows at the slowest rate expected needs a larger `call`).
//! 2. Every call is idempotent (PUT of a whole object, GET, HEAD, DELETE, list, the
//!    parts and the completion of a multipart upload, whose repeat finds the finished
//!    upload on AWS and Swift; `put_new`'s conditional PUT, see below), so each is
//!    retried with exponential backoff and jitter after a connection error, a timeout,
//!    a 5xx answer (but 501 and 505) or S3's `RequestTimeout`, at most
//!    [`RETRY_ATTEMPTS`] attempts in all. A certificate that is not trusted is not
//!    retried.
//! 3. An object larger than `backup_s3_object_size` is sent as a multipart upload
//!    (parts of that size, at least 5 MiB, at most 1000 parts), which the store makes
//!    visible whole when it is completed; a failed upload is aborted.
//! 4. Any other answer becomes [`Error::Backend`] naming the target, the operation,
//!    the key, the HTTP status and S3's error code and message; a 403 adds which
//!    settings to check. The secret key never appears in an error (nor does a signed
//!    URL: it is a bearer credential until it expires).
//!
//! `put_new` (lock files) is a conditional write, then a check:
//!
//! 1. HEAD: an existing object means Ok(false) at once.
//! 2. PUT with `If-None-Match: *`: 412 means an object exists (Ok(false)). AWS S3
//!    documents this check as atomic. Swift's object server checks it when the PUT
//!    *starts*, so PUTs that overlap in time all succeed (measured on the test store:
//!    up to 3 of 8 writers racing for one key), and a store that ignores the header
//!    simply overwrites; one that refuses it (501) gets a plain PUT from then on.
//! 3. GET: Ok(true) only if the object holds our bytes; a racing writer that
//!    overwrote it wins instead. This narrows the window of a non-atomic store (on
//!    the test store, 0 of 70 rounds of 8 racing writers had two winners) but does
//!    not close it (a writer can read back its bytes just before another one's
//!    overlapping PUT lands), so on such stores `put_new` is **best effort**: a lock
//!    protocol on top must not rely on it alone (restic's re-checks the lock files
//!    it can see after writing its own).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use md5::{Digest, Md5};
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject, HeadObject,
    ListObjectsV2, PutObject, UploadPart,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use ureq::http;
use ureq::RequestExt;

use super::target::Target;
use crate::error::{Error, Result};

/// Attempts of an idempotent call (the first and the retries).
pub const RETRY_ATTEMPTS: u32 = 4;
/// The pause before the first retry; it doubles for each further one (with ±50% jitter).
const RETRY_FIRST_DELAY: Duration = Duration::from_millis(250);
/// How long a signed URL stays valid (it must outlive the request, and S3 refuses
/// more than 7 days).
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(3600);
/// S3's smallest part (except the last) and its largest single PUT.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
/// Parts of one multipart upload: AWS allows 10000, Swift's s3api 1000.
const MAX_PARTS: u64 = 1000;
/// Keys asked for in one page of a listing (the store may send fewer).
const LIST_PAGE: usize = 1000;
/// The most of an error answer's body that is read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// The longest key S3 accepts (bytes).
const MAX_KEY_LEN: usize = 1024;

/// What an [`S3Target`] is configured with: Cinder's `backup_s3_*` options, plus the
/// region.
#[derive(Clone)]
pub struct S3Settings {
    /// `backup_s3_endpoint_url`: `http(s)://host[:port][/path]` of the S3 API.
    pub endpoint_url: String,
    /// `backup_s3_store_access_key`.
    pub access_key: String,
    /// `backup_s3_store_secret_key`.
    pub secret_key: String,
    /// `backup_s3_store_bucket`: the bucket must exist.
    pub bucket: String,
    /// `backup_s3_region` (hearth's; Cinder has none): the SigV4 signing region,
    /// [`S3Settings::DEFAULT_REGION`] unless the store wants another.
    pub region: String,
    /// `backup_s3_object_size`: the largest object sent in one PUT, in bytes; larger
    /// ones go as multipart uploads with parts of this size (at least 5 MiB).
    pub object_size: u64,
    /// `backup_s3_md5_validation`: send `Content-MD5`, which the store checks.
    pub md5_validation: bool,
    /// `backup_s3_ca_cert_file`: PEM certificates to trust instead of the
    /// built-in roots (webpki-roots) for an `https` endpoint.
    pub ca_cert_file: Option<PathBuf>,
    /// `backup_s3_verify_ssl`: check the endpoint's TLS certificate.
    pub verify_ssl: bool,
}

impl S3Settings {
    /// The region when none is configured.
    pub const DEFAULT_REGION: &'static str = "us-east-1";
    /// Cinder's default `backup_s3_object_size` (50 MiB).
    pub const DEFAULT_OBJECT_SIZE: u64 = 52_428_800;

    /// Settings with these four and the defaults for the rest (region us-east-1,
    /// object size 50 MiB, MD5 validation, TLS verification with the built-in roots).
    pub fn new(endpoint_url: &str, access_key: &str, secret_key: &str, bucket: &str) -> S3Settings {
        S3Settings {
            endpoint_url: endpoint_url.to_string(),
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            bucket: bucket.to_string(),
            region: S3Settings::DEFAULT_REGION.to_string(),
            object_size: S3Settings::DEFAULT_OBJECT_SIZE,
            md5_validation: true,
            ca_cert_file: None,
            verify_ssl: true,
        }
    }
}

impl fmt::Debug for S3Settings {
    // Never the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint_url", &self.endpoint_url)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("object_size", &self.object_size)
            .field("md5_validation", &self.md5_validation)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("verify_ssl", &self.verify_ssl)
            .finish()
    }
}

/// The time limits of every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Timeouts {
    /// Connecting, TLS handshake included.
    pub connect: Duration,
    /// The longest pause while sending the request or waiting for and reading the
    /// answer (the store writes a PUT's data before it answers).
    pub idle: Duration,
    /// A whole request, plus one second per MiB of its body or of the object read.
    pub call: Duration,
}

impl Default for S3Timeouts {
    fn default() -> S3Timeouts {
        S3Timeouts { connect: Duration::from_secs(10), idle: Duration::from_secs(60), call: Duration::from_secs(120) }
    }
}

/// A bucket of an S3-compatible object store as a backup [`Target`].
pub struct S3Target {
    agent: ureq::Agent,
    tls: ureq::tls::TlsConfig,
    timeouts: S3Timeouts,
    retry_first_delay: Duration,
    bucket: Bucket,
    credentials: Credentials,
    /// Objects up to this size go in one PUT.
    single_put_limit: u64,
    /// The size of a multipart upload's parts (the last may be smaller).
    part_size: u64,
    md5_validation: bool,
    /// Cleared when the store answered 501 to `If-None-Match: *`.
    conditional_writes: AtomicBool,
    description: String,
}

impl fmt::Debug for S3Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Target").field("target", &self.description).finish_non_exhaustive()
    }
}

/// An S3 call, for errors and logs: `PUT chunks/ab/abcd`.
#[derive(Clone, Copy)]
struct Op<'a> {
    verb: &'a str,
    key: &'a str,
}

impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.verb)
        } else {
            write!(f, "{} {}", self.verb, self.key)
        }
    }
}

/// A request to send (made again for each attempt).
struct Req<'a> {
    method: http::Method,
    url: url::Url,
    headers: Vec<(&'static str, String)>,
    body: Option<&'a [u8]>,
}

/// An answer of the store.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
    /// Whether an earlier attempt may have reached the store and taken effect (it
    /// failed after sending, or with a 5xx): what a conditional write must know.
    earlier_attempt_may_have_applied: bool,
    /// Attempts made for this answer (more than one after retries).
    attempts: u32,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`, ...), if the body has one.
    fn code(&self) -> Option<&str> {
        xml_text(&self.body, "Code")
    }
}

impl S3Target {
    /// A target on `settings`' bucket. Nothing is sent to the store: [`S3Target::check`]
    /// does that.
    ///
    /// Errors (`Error::Backend`, naming the option): the endpoint is not an
    /// `http(s)` URL with a host, a key, the bucket or the region is empty,
    /// `object_size` is 0, the CA file cannot be read or has no certificate.
    pub fn new(settings: S3Settings) -> Result<S3Target> {
        let bad = |msg: String| Error::Backend(format!("S3 backup target: {msg}"));
        let endpoint: url::Url = settings
            .endpoint_url
            .parse()
            .map_err(|e| bad(format!("backup_s3_endpoint_url {:?} is not a URL ({e}).", settings.endpoint_url)))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(bad(format!(
                "backup_s3_endpoint_url {:?} must be an http:// or https:// URL with a host.",
                settings.endpoint_url
            )));
        }
        if settings.access_key.is_empty() {
            return Err(bad("backup_s3_store_access_key is not set.".into()));
        }
        if settings.secret_key.is_empty() {
            return Err(bad("backup_s3_store_secret_key is not set.".into()));
        }
        if settings.bucket.is_empty() || settings.bucket.contains('/') {
            return Err(bad(format!("backup_s3_store_bucket {:?} is not a bucket name.", settings.bucket)));
        }
        if settings.region.is_empty() {
            return Err(bad("backup_s3_region is empty.".into()));
        }
        if settings.object_size == 0 {
            return Err(bad("backup_s3_object_size must be at least 1 byte.".into()));
        }
        let host = match endpoint.port() {
            Some(p) => format!("{}:{p}", endpoint.host_str().unwrap_or_default()),
            None => endpoint.host_str().unwrap_or_default().to_string(),
        };
        let description = format!("s3:{}@{host}", settings.bucket);
        let bucket = Bucket::new(endpoint, UrlStyle::Path, settings.bucket.clone(), settings.region.clone())
            .map_err(|e| bad(format!("bucket {:?} at {:?}: {e}.", settings.bucket, settings.endpoint_url)))?;

        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(!settings.verify_ssl);
        if let Some(ca) = &settings.ca_cert_file {
            let pem = std::fs::read(ca).map_err(|e| bad(format!("backup_s3_ca_cert_file {}: {e}.", ca.display())))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("backup_s3_ca_cert_file {}: {e}.", ca.display())))?;
            if certs.is_empty() {
                return Err(bad(format!("backup_s3_ca_cert_file {}: no certificate in the file.", ca.display())));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let tls = tls.build();
        let timeouts = S3Timeouts::default();
        let single_put_limit = settings.object_size.min(MAX_SINGLE_PUT);
        Ok(S3Target {
            agent: agent(&tls, &timeouts),
            tls,
            timeouts,
            retry_first_delay: RETRY_FIRST_DELAY,
            bucket,
            credentials: Credentials::new(settings.access_key, settings.secret_key),
            single_put_limit,
            part_size: single_put_limit.max(MIN_PART_SIZE),
            md5_validation: settings.md5_validation,
            conditional_writes: AtomicBool::new(true),
            description,
        })
    }

    /// The same target with other time limits (the defaults: connect 10 s, idle 60 s,
    /// call 120 s plus 1 s per MiB).
    pub fn with_timeouts(mut self, timeouts: S3Timeouts) -> S3Target {
        self.agent = agent(&self.tls, &timeouts);
        self.timeouts = timeouts;
        self
    }

    /// The same target with another pause before the first retry (default 250 ms).
    pub fn with_retry_delay(mut self, first: Duration) -> S3Target {
        self.retry_first_delay = first;
        self
    }

    /// The time limits in force.
    pub fn timeouts(&self) -> S3Timeouts {
        self.timeouts
    }

    /// Check that the bucket is reachable with these credentials: one signed listing
    /// of at most one key. Errors say whether the store cannot be reached, refuses the
    /// credentials (403: check the access and secret keys), or has no such bucket.
    pub fn check(&self) -> Result<()> {
        let op = Op { verb: "checking bucket", key: "" };
        let mut list = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        list.with_max_keys(1);
        let url = list.sign(SIGNATURE_LIFETIME);
        let answer =
            self.send(op, &mut || Req { method: http::Method::GET, url: url.clone(), headers: vec![], body: None })?;
        if answer.status == 200 {
            return Ok(());
        }
        Err(self.http_error(op, &answer))
    }

    // -----------------------------------------------------------------------
    // requests
    // -----------------------------------------------------------------------

    /// Send `make()`'s request, retrying as the module says (every call of this
    /// target is idempotent, the conditional PUT of `put_new` included: a 412 after an
    /// attempt that may have been stored is judged by reading the object back); the
    /// answer of the last attempt (any status), or the error of the last attempt.
    fn send<'b>(&self, op: Op<'_>, make: &mut dyn FnMut() -> Req<'b>) -> Result<Answer> {
        let mut delay = self.retry_first_delay;
        let mut may_have_applied = false;
        let mut attempt = 1;
        loop {
            let req = make();
            let body_len = req.body.map_or(0, |b| b.len() as u64);
            let outcome = self.exchange(req);
            let (retryable, sent, cause) = match &outcome {
                Ok(a) if (500..600).contains(&a.status) && !matches!(a.status, 501 | 505) => {
                    (true, true, format!("HTTP {}{}", a.status, a.code().map(|c| format!(" {c}")).unwrap_or_default()))
                }
                Ok(a) if a.status == 400 && a.code() == Some("RequestTimeout") => {
                    (true, true, "HTTP 400 RequestTimeout".into())
                }
                Ok(_) => (false, true, String::new()),
                Err(e) => {
                    let (retryable, sent) = classify(e);
                    (retryable, sent, self.transport_cause(e, body_len))
                }
            };
            if !retryable || attempt >= RETRY_ATTEMPTS {
                return match outcome {
                    Ok(mut a) => {
                        a.earlier_attempt_may_have_applied = may_have_applied;
                        a.attempts = attempt;
                        Ok(a)
                    }
                    Err(_) => Err(self.error(
                        op,
                        &format!(
                            "{cause}{}",
                            if attempt > 1 { format!(" (after {attempt} attempts)") } else { String::new() }
                        ),
                    )),
                };
            }
            may_have_applied |= sent;
            let jittered = delay.mul_f64(0.5 + jitter());
            log::warn!(
                "{}: {op}: {}; retrying in {} ms (attempt {} of {RETRY_ATTEMPTS})",
                self.description,
                self.redact(&cause),
                jittered.as_millis(),
                attempt + 1
            );
            std::thread::sleep(jittered);
            delay *= 2;
            attempt += 1;
        }
    }

    /// One HTTP exchange, the answer's body read whole (an error's up to 64 KiB).
    fn exchange(&self, req: Req<'_>) -> std::result::Result<Answer, ureq::Error> {
        let body_len = req.body.map_or(0, |b| b.len() as u64);
        let mut builder = http::Request::builder().method(req.method.clone()).uri(req.url.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        let call = self.timeouts.call + Duration::from_secs(body_len >> 20);
        let mut response = match req.body {
            Some(body) => {
                builder.body(body)?.with_agent(&self.agent).configure().timeout_global(Some(call)).build().run()?
            }
            None => builder.body(())?.with_agent(&self.agent).configure().timeout_global(Some(call)).build().run()?,
        };
        let status = response.status().as_u16();
        let limit = if (200..300).contains(&status) { u64::MAX } else { ERROR_BODY_LIMIT };
        let expected = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = if req.method == http::Method::HEAD {
            Vec::new()
        } else if limit == ERROR_BODY_LIMIT {
            // An error's body only explains: a cut one is still useful.
            response.body_mut().with_config().limit(limit).read_to_vec().unwrap_or_default()
        } else {
            response.body_mut().with_config().limit(limit).read_to_vec()?
        };
        if let Some(n) = expected.filter(|_| limit == u64::MAX && req.method != http::Method::HEAD) {
            if body.len() as u64 != n {
                return Err(ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the answer's body has {} bytes of the {n} announced", body.len()),
                )));
            }
        }
        Ok(Answer {
            status,
            headers: response.headers().clone(),
            body,
            earlier_attempt_may_have_applied: false,
            attempts: 1,
        })
    }

    /// What a transport failure was, for an error or a log line.
    fn transport_cause(&self, e: &ureq::Error, body_len: u64) -> String {
        match e {
            ureq::Error::Timeout(t) => {
                let limit = match t {
                    ureq::Timeout::Connect | ureq::Timeout::Resolve => self.timeouts.connect,
                    ureq::Timeout::Global | ureq::Timeout::PerCall => {
                        self.timeouts.call + Duration::from_secs(body_len >> 20)
                    }
                    _ => self.timeouts.idle,
                };
                format!("no answer in time ({t} timeout, {} s)", limit.as_secs_f64())
            }
            ureq::Error::ConnectionFailed => "cannot connect to the store".into(),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "cannot connect to the store (connection refused)".into()
            }
            ureq::Error::Io(e) if tls_error(e).is_some() => format!(
                "TLS: {} (check backup_s3_ca_cert_file and backup_s3_verify_ssl)",
                tls_error(e).map(ToString::to_string).unwrap_or_default()
            ),
            ureq::Error::Rustls(e) => {
                format!("TLS: {e} (check backup_s3_ca_cert_file and backup_s3_verify_ssl)")
            }
            ureq::Error::Io(e) => format!("connection error ({e})"),
            ureq::Error::HostNotFound => "the endpoint's host name does not resolve".into(),
            other => format!("{other}"),
        }
    }

    // -----------------------------------------------------------------------
    // errors
    // -----------------------------------------------------------------------

    /// `Error::Backend` naming the target, the call and `cause`; never the secret.
    fn error(&self, op: Op<'_>, cause: &str) -> Error {
        Error::Backend(self.redact(&format!("S3 backup target {}: {op}: {cause}.", self.description)))
    }

    /// The error for an answer the call did not expect.
    fn http_error(&self, op: Op<'_>, a: &Answer) -> Error {
        let mut cause = format!("HTTP {}", a.status);
        if let Some(code) = a.code() {
            cause.push_str(&format!(" {code}"));
        }
        if let Some(msg) = xml_text(&a.body, "Message") {
            cause.push_str(&format!(" ({})", msg.trim_end_matches('.')));
        }
        match (a.status, a.code()) {
            (403, _) => cause.push_str(
                ": check backup_s3_store_access_key and backup_s3_store_secret_key, and that they may use the bucket",
            ),
            (404, Some("NoSuchBucket")) => cause
                .push_str(&format!(": the bucket {:?} does not exist (backup_s3_store_bucket)", self.bucket.name())),
            (
                301 | 307 | 400,
                Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"),
            ) => cause.push_str(": check backup_s3_endpoint_url and backup_s3_region"),
            _ => {}
        }
        if a.attempts > 1 {
            cause.push_str(&format!(" (after {} attempts)", a.attempts));
        }
        self.error(op, &cause)
    }

    /// `text` without the secret key or a signed URL's query string.
    fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.credentials.secret(), "<secret>");
        // A query parameter of a signed URL (`?X-Amz-...` or `&X-Amz-...`), from the
        // query's `?` to the URL's end.
        while let Some(start) = out.find("?X-Amz-").or_else(|| out.find("&X-Amz-")) {
            let from = out[..=start].rfind('?').unwrap_or(start);
            let end =
                out[start..].find(|c: char| c.is_whitespace() || c == '"' || c == ')').map_or(out.len(), |i| start + i);
            out.replace_range(from..end, "?<signed>");
        }
        out
    }

    // -----------------------------------------------------------------------
    // objects
    // -----------------------------------------------------------------------

    fn content_md5(&self, data: &[u8]) -> Option<String> {
        self.md5_validation.then(|| base64::engine::general_purpose::STANDARD.encode(Md5::digest(data)))
    }

    /// One PUT of the whole object; `if_none_match` makes it conditional. The answer
    /// (2xx, 412, ...) is the caller's to judge.
    fn put_single(&self, key: &str, data: &[u8], if_none_match: bool) -> Result<Answer> {
        let op = Op { verb: if if_none_match { "PUT (if none)" } else { "PUT" }, key };
        let md5 = self.content_md5(data);
        let mut headers = vec![("content-type", "application/octet-stream".to_string())];
        if let Some(m) = &md5 {
            headers.push(("content-md5", m.clone()));
        }
        if if_none_match {
            headers.push(("if-none-match", "*".to_string()));
        }
        let mut make = || {
            let mut action = PutObject::new(&self.bucket, Some(&self.credentials), key);
            if let Some(m) = &md5 {
                action.headers_mut().insert("content-md5", m.as_str());
            }
            if if_none_match {
                action.headers_mut().insert("if-none-match", "*");
            }
            Req {
                method: http::Method::PUT,
                url: action.sign(SIGNATURE_LIFETIME),
                headers: headers.clone(),
                body: Some(data),
            }
        };
        self.send(op, &mut make)
    }

    /// A multipart upload of `data` in parts of `part_size` (at most 1000 parts). The
    /// start is retried like the rest: a start whose answer was lost leaves an unused
    /// upload behind (stores expire those with a lifecycle rule; Swift keeps their
    /// parts in `<bucket>+segments`).
    fn put_multipart(&self, key: &str, data: &[u8]) -> Result<()> {
        let part_size = self.part_size.max((data.len() as u64).div_ceil(MAX_PARTS)) as usize;
        let op = Op { verb: "multipart PUT", key };
        let url = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let headers = vec![("content-type", "application/octet-stream".to_string())];
        let answer = self.send(op, &mut || Req {
            method: http::Method::POST,
            url: url.clone(),
            headers: headers.clone(),
            body: Some(&[]),
        })?;
        if answer.status != 200 {
            return Err(self.http_error(Op { verb: "starting multipart PUT", key }, &answer));
        }
        let text = String::from_utf8_lossy(&answer.body);
        let created = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| self.error(Op { verb: "starting multipart PUT", key }, &format!("unreadable answer ({e})")))?;
        let upload_id = created.upload_id().to_string();
        let result = self.upload_parts(key, data, part_size, &upload_id);
        if result.is_err() {
            let url = AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, &upload_id)
                .sign(SIGNATURE_LIFETIME);
            let abort = Op { verb: "aborting multipart PUT", key };
            match self.send(abort, &mut || Req {
                method: http::Method::DELETE,
                url: url.clone(),
                headers: vec![],
                body: None,
            }) {
                Ok(a) if (200..300).contains(&a.status) || a.status == 404 => {}
                Ok(a) => log::warn!("{}", self.http_error(abort, &a)),
                Err(e) => log::warn!("{e}"),
            }
        }
        result
    }

    fn upload_parts(&self, key: &str, data: &[u8], part_size: usize, upload_id: &str) -> Result<()> {
        let mut etags = Vec::new();
        for (i, part) in data.chunks(part_size).enumerate() {
            let number = u16::try_from(i + 1).expect("at most 1000 parts");
            let verb = format!("PUT part {number} of");
            let op = Op { verb: &verb, key };
            let md5 = self.content_md5(part);
            let mut headers = Vec::new();
            if let Some(m) = &md5 {
                headers.push(("content-md5", m.clone()));
            }
            let answer = self.send(op, &mut || {
                let mut action = UploadPart::new(&self.bucket, Some(&self.credentials), key, number, upload_id);
                if let Some(m) = &md5 {
                    action.headers_mut().insert("content-md5", m.as_str());
                }
                Req {
                    method: http::Method::PUT,
                    url: action.sign(SIGNATURE_LIFETIME),
                    headers: headers.clone(),
                    body: Some(part),
                }
            })?;
            if answer.status != 200 {
                return Err(self.http_error(op, &answer));
            }
            let etag = answer.header("etag").ok_or_else(|| self.error(op, "the answer has no ETag"))?;
            etags.push(etag.to_string());
        }
        let op = Op { verb: "completing multipart PUT", key };
        let complete = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = complete.sign(SIGNATURE_LIFETIME);
        let body = complete.body().into_bytes();
        // Completing is idempotent on AWS and Swift (a repeat finds the finished upload).
        let answer = self.send(op, &mut || Req {
            method: http::Method::POST,
            url: url.clone(),
            headers: vec![("content-type", "application/xml".to_string())],
            body: Some(&body),
        })?;
        // S3 may answer 200 and put an error in the body.
        if answer.status != 200 || answer.code().is_some() {
            return Err(self.http_error(op, &answer));
        }
        Ok(())
    }

    fn head(&self, key: &str) -> Result<bool> {
        let op = Op { verb: "HEAD", key };
        let url = HeadObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let answer =
            self.send(op, &mut || Req { method: http::Method::HEAD, url: url.clone(), headers: vec![], body: None })?;
        match answer.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.http_error(op, &answer)),
        }
    }
}

/// An agent with these limits (connections are pooled: the target is used by several
/// threads at once).
fn agent(tls: &ureq::tls::TlsConfig, t: &S3Timeouts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .tls_config(tls.clone())
        .timeout_connect(Some(t.connect))
        .timeout_per_read(Some(t.idle))
        .timeout_per_write(Some(t.idle))
        .max_idle_connections(64)
        .max_idle_connections_per_host(32)
        .user_agent("hearth-backup-s3")
        .build()
        .new_agent()
}

/// (retryable, the request may have been sent) for a transport error.
fn classify(e: &ureq::Error) -> (bool, bool) {
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => (true, false),
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => (true, false),
        // A certificate the configuration does not trust: trying again will not help.
        ureq::Error::Io(e) if tls_error(e).is_some() => (false, false),
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => (true, false),
        ureq::Error::Timeout(_) | ureq::Error::Io(_) | ureq::Error::Protocol(_) | ureq::Error::BodyStalled => {
            (true, true)
        }
        _ => (false, true),
    }
}

/// The TLS failure inside an I/O error (rustls reports a refused certificate so).
fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A number in [0, 1) for the retry jitter.
fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// The text of the first `<tag>` element of an XML body (S3 error answers).
fn xml_text<'a>(body: &'a [u8], tag: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("</")? + start;
    Some(text[start..end].trim())
}

/// Keys and prefixes the [`Target`] trait allows: `/`-separated segments of
/// `[A-Za-z0-9._-]`, none empty, `.` or `..` (a URL would resolve those out of the
/// bucket); a prefix may end with `/` or be empty.
fn check_key(key: &str, prefix: bool) -> std::result::Result<(), String> {
    if key.is_empty() {
        return if prefix { Ok(()) } else { Err("a key cannot be empty".into()) };
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("a key has at most {MAX_KEY_LEN} bytes"));
    }
    if let Some(c) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))) {
        return Err(format!("{c:?} is not allowed in a key (only A-Z a-z 0-9 . _ - /)"));
    }
    let body = if prefix { key.strip_suffix('/').unwrap_or(key) } else { key };
    if body.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err("a key's segments cannot be empty, '.' or '..'".into());
    }
    Ok(())
}

fn parse_time(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(SystemTime::from)
}

/// Fuzzing: what hearth reads of an S3 store's answers (see `crate::fuzzing`): error
/// bodies, listings and their times.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_answers(body: &[u8]) {
    let _ = (xml_text(body, "Code"), xml_text(body, "Message"));
    let text = String::from_utf8_lossy(body);
    if let Ok(page) = ListObjectsV2::parse_response(&text) {
        for item in page.contents {
            let _ = item.last_modified.as_deref().and_then(parse_time);
            let _ = check_key(&item.key, false);
        }
    }
    let _ = parse_time(&text);
}

impl S3Target {
    fn valid_key(&self, verb: &str, key: &str, prefix: bool) -> Result<()> {
        check_key(key, prefix)
            .map_err(|why| Error::Internal(format!("S3 backup target {}: {verb} {key:?}: {why}.", self.description)))
    }
}

impl Target for S3Target {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.valid_key("PUT", key, false)?;
        if data.len() as u64 > self.single_put_limit {
            return self.put_multipart(key, data);
        }
        let answer = self.put_single(key, data, false)?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        Err(self.http_error(Op { verb: "PUT", key }, &answer))
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<bool> {
        self.valid_key("PUT", key, false)?;
        if self.head(key)? {
            return Ok(false);
        }
        if data.len() as u64 > self.single_put_limit {
            // No conditional multipart completion everywhere: HEAD, PUT, read back.
            self.put_multipart(key, data)?;
            return Ok(self.get(key)?.as_deref() == Some(data));
        }
        let conditional = self.conditional_writes.load(Ordering::Relaxed);
        let answer = self.put_single(key, data, conditional)?;
        let op = Op { verb: "PUT (if none)", key };
        match answer.status {
            // Stored; but a store whose check is not atomic (Swift) may have let a
            // racing writer store too: ours only if the object still holds our bytes.
            200..=299 => Ok(self.get(key)?.as_deref() == Some(data)),
            // The object exists: someone else's, or ours if an earlier attempt of this
            // call was stored but its answer lost: read it back to tell.
            412 if answer.earlier_attempt_may_have_applied => Ok(self.get(key)?.as_deref() == Some(data)),
            412 => Ok(false),
            501 if conditional => {
                log::warn!(
                    "{}: the store does not take If-None-Match on PUT: put_new is HEAD then PUT from now on (best effort)",
                    self.description
                );
                self.conditional_writes.store(false, Ordering::Relaxed);
                let answer = self.put_single(key, data, false)?;
                if (200..300).contains(&answer.status) {
                    Ok(self.get(key)?.as_deref() == Some(data))
                } else {
                    Err(self.http_error(Op { verb: "PUT", key }, &answer))
                }
            }
            _ => Err(self.http_error(op, &answer)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.valid_key("GET", key, false)?;
        let op = Op { verb: "GET", key };
        let url = GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let answer =
            self.send(op, &mut || Req { method: http::Method::GET, url: url.clone(), headers: vec![], body: None })?;
        match (answer.status, answer.code()) {
            (200, _) => Ok(Some(answer.body)),
            (404, Some("NoSuchKey") | None) => Ok(None),
            _ => Err(self.http_error(op, &answer)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        self.valid_key("HEAD", key, false)?;
        self.head(key)
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.valid_key("DELETE", key, false)?;
        let op = Op { verb: "DELETE", key };
        let url = DeleteObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let answer =
            self.send(op, &mut || Req { method: http::Method::DELETE, url: url.clone(), headers: vec![], body: None })?;
        match (answer.status, answer.code()) {
            (200..=299, _) | (404, Some("NoSuchKey") | None) => Ok(()),
            _ => Err(self.http_error(op, &answer)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>> {
        self.valid_key("LIST", prefix, true)?;
        let op = Op { verb: "LIST", key: prefix };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut list = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            if !prefix.is_empty() {
                list.with_prefix(prefix);
            }
            if let Some(t) = &token {
                list.with_continuation_token(t.as_str());
            }
            list.with_max_keys(LIST_PAGE);
            let url = list.sign(SIGNATURE_LIFETIME);
            let answer = self.send(op, &mut || Req {
                method: http::Method::GET,
                url: url.clone(),
                headers: vec![],
                body: None,
            })?;
            if answer.status != 200 {
                return Err(self.http_error(op, &answer));
            }
            let text = String::from_utf8_lossy(&answer.body);
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| self.error(op, &format!("unreadable listing ({e})")))?;
            for item in page.contents {
                let modified = item.last_modified.as_deref().and_then(parse_time).ok_or_else(|| {
                    self.error(op, &format!("the listing gives {} no readable LastModified", item.key))
                })?;
                out.push((item.key, modified));
            }
            match page.next_continuation_token {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                Some(_) => return Err(self.error(op, "the store repeated a continuation token")),
                None => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> S3Target {
        S3Target::new(S3Settings::new("http://127.0.0.1:9/", "AK", "s3cr3t-value", "bkt")).unwrap()
    }

    #[test]
    fn settings_are_checked_with_their_option_names() {
        let ok = S3Settings::new("https://s3.example.net", "a", "s", "b");
        let cases: Vec<(S3Settings, &str)> = vec![
            (S3Settings { endpoint_url: "not a url".into(), ..ok.clone() }, "backup_s3_endpoint_url"),
            (S3Settings { endpoint_url: "ftp://h/".into(), ..ok.clone() }, "backup_s3_endpoint_url"),
            (S3Settings { access_key: String::new(), ..ok.clone() }, "backup_s3_store_access_key"),
            (S3Settings { secret_key: String::new(), ..ok.clone() }, "backup_s3_store_secret_key"),
            (S3Settings { bucket: String::new(), ..ok.clone() }, "backup_s3_store_bucket"),
            (S3Settings { object_size: 0, ..ok.clone() }, "backup_s3_object_size"),
            (S3Settings { ca_cert_file: Some("/nonexistent/ca.pem".into()), ..ok.clone() }, "backup_s3_ca_cert_file"),
        ];
        for (settings, option) in cases {
            match S3Target::new(settings) {
                Err(Error::Backend(msg)) => assert!(msg.contains(option), "{msg}"),
                other => panic!("{option}: {other:?}"),
            }
        }
        let t = S3Target::new(ok).unwrap();
        assert_eq!(t.describe(), "s3:b@s3.example.net");
        assert_eq!(target().describe(), "s3:bkt@127.0.0.1:9");
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = S3Settings::new("http://h", "a", "very-secret", "b");
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!format!("{:?}", target()).contains("s3cr3t"));
    }

    #[test]
    fn keys_are_checked() {
        for good in ["a", "chunks/ab/abcdef", "x.y_z-1", "locks/a.lock"] {
            assert_eq!(check_key(good, false), Ok(()), "{good}");
        }
        for bad in ["", "/a", "a//b", "a/", "a/../b", "..", ".", "a b", "a?b", "é", "a%2f"] {
            assert!(check_key(bad, false).is_err(), "{bad}");
        }
        for good in ["", "chunks/", "a/b/"] {
            assert_eq!(check_key(good, true), Ok(()), "{good}");
        }
        for bad in ["/", "a//", "../"] {
            assert!(check_key(bad, true).is_err(), "{bad}");
        }
        assert!(matches!(target().get("../other-bucket/x"), Err(Error::Internal(_))));
    }

    #[test]
    fn errors_never_show_the_secret_or_a_signature() {
        let t = target();
        let msg = t.redact("failed: http://h/b/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc s3cr3t-value end");
        assert_eq!(msg, "failed: http://h/b/k?<signed> <secret> end");
        let msg = t.redact("GET http://h/b?list-type=2&X-Amz-Credential=AK%2F1&X-Amz-Signature=ff)");
        assert_eq!(msg, "GET http://h/b?<signed>)");
        let plain = "HTTP 400 XAmzContentSHA256Mismatch (The X-Amz-Content-SHA256 you specified did not match)";
        assert_eq!(t.redact(plain), plain);
        let a = Answer {
            status: 403,
            headers: http::HeaderMap::new(),
            body: b"<?xml version='1.0'?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match s3cr3t-value.</Message></Error>".to_vec(),
            earlier_attempt_may_have_applied: false,
            attempts: 1,
        };
        let Error::Backend(msg) = t.http_error(Op { verb: "PUT", key: "k" }, &a) else { panic!() };
        assert!(msg.starts_with("S3 backup target s3:bkt@127.0.0.1:9: PUT k: HTTP 403 SignatureDoesNotMatch"), "{msg}");
        assert!(msg.contains("backup_s3_store_secret_key"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
        assert!(msg.ends_with('.'), "{msg}");
    }

    #[test]
    fn part_sizes_respect_s3_limits() {
        let mut s = S3Settings::new("http://h", "a", "s", "b");
        s.object_size = 1024;
        let t = S3Target::new(s.clone()).unwrap();
        assert_eq!((t.single_put_limit, t.part_size), (1024, MIN_PART_SIZE));
        s.object_size = 100 << 30;
        let t = S3Target::new(s).unwrap();
        assert_eq!((t.single_put_limit, t.part_size), (MAX_SINGLE_PUT, MAX_SINGLE_PUT));
    }

    #[test]
    fn listing_times_parse() {
        let t = parse_time("2026-12-02T13:06:11.000Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_796_216_771);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn a_closed_port_is_a_clear_error_after_retries() {
        // Port 9 (discard) on loopback: nothing listens there on a test machine.
        let t = target().with_retry_delay(Duration::from_millis(1));
        match t.get("k") {
            Err(Error::Backend(msg)) => {
                assert!(msg.contains("s3:bkt@127.0.0.1:9: GET k: cannot connect"), "{msg}");
                assert!(msg.contains(&format!("after {RETRY_ATTEMPTS} attempts")), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
}
