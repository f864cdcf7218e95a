//! Fuzz targets: one entry point per input hearth reads from outside, called by the
//! libFuzzer binaries in `fuzz/` (built on the stable toolchain; see `scripts/fuzz.sh`)
//! and, over every kept input, by this module's tests.
//!
//! Each entry point takes any bytes and must not panic; where a parser has a printer,
//! what it prints must parse back to the same value. The API targets send whole
//! requests through [`Api`](crate::api::Api) in-process, against a core on the file
//! backend in a temporary directory (made once per process), and fail on a 500 (the
//! pipeline turns a handler's panic into one) or on an error without Cinder's body.
//!
//! Kept inputs: `fuzz/corpus/<target>/` (seeds and what runs found, minimised) and
//! `fuzz/regressions/<target>/` (every input that once failed, named after the fix).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::api::server::{Handler, Request};
use crate::api::{microversion, Api};

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The targets, by the names of their directories and binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("api_body", api_body),
    ("api_request", api_request),
    ("backup_objects", backup_objects),
    ("config", config),
    ("configfs_names", configfs_names),
    ("device_mapper", device_mapper),
    ("lvm_report", lvm_report),
    ("microversion", microversion),
    ("s3_answers", s3_answers),
    ("thin_delta", thin_delta),
];

/// A configuration file: parsed and validated, or refused with an error.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = crate::config::Config::parse(text, "fuzz.toml") {
        let _ = config.validate();
    }
}

/// The `OpenStack-API-Version` header: a version within range prints and parses back.
pub fn microversion(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = microversion::Version::from_header(Some(text)) {
        assert!((microversion::MIN..=microversion::MAX).contains(&v), "{text:?} gave {v}, out of range");
        let shown = format!("volume {v}");
        assert_eq!(microversion::Version::from_header(Some(&shown)).ok(), Some(v), "{shown:?} does not parse back");
    }
}

/// `lvs` and `vgs` JSON reports, and the pool figures made of them.
pub fn lvm_report(data: &[u8]) {
    crate::backend::lvm::fuzz_reports(&String::from_utf8_lossy(data));
}

/// Device-mapper ioctl replies and thin/thin-pool status lines.
pub fn device_mapper(data: &[u8]) {
    crate::backend::dm::fuzz_replies(data);
}

/// `thin_delta`'s XML: the changed ranges are sorted, disjoint and within the size.
pub fn thin_delta(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(delta) = crate::backend::thin_delta::parse(text) else { return };
    for size in [0, 4096, 1 << 30, u64::MAX] {
        let ranges = delta.byte_ranges(size);
        for r in &ranges {
            assert!(r.start < r.end && r.end <= size, "range {r:?} for a size of {size}");
        }
        for pair in ranges.windows(2) {
            assert!(pair[0].end <= pair[1].start, "ranges {:?} overlap or are out of order", pair);
        }
    }
}

/// What a backup repository holds: manifests, its config object, chunk keys, locks.
pub fn backup_objects(data: &[u8]) {
    use crate::backup::format::{self, ChunkName, ConfigObject, Manifest};
    let id = "0b6ee5ec-4e8e-4bbc-8e2e-3bd7f0d9b3c1";
    if let Ok(m) = Manifest::parse(data, id, "the manifest") {
        let end = m.chunks.len().min(1 << 16);
        let mut covered = 0u64;
        for i in 0..end {
            let r = m.chunk_range(i);
            assert!(r.start <= r.end && r.end <= m.size, "chunk {i} is {r:?} of {} bytes", m.size);
            covered = r.end;
        }
        assert!(end < m.chunks.len() || covered == m.size, "chunks cover {covered} of {} bytes", m.size);
    }
    let _ = ConfigObject::parse(data, "fuzz");
    // The same bytes as stored objects: a manifest's zstd frame, a chunk's.
    let codec = crate::backup::codec::Codec::new(None);
    if let Ok(plain) = codec.decode_object(&format::manifest_key(id), data.to_vec()) {
        let _ = Manifest::parse(&plain, id, "the manifest");
    }
    let mut out = vec![0u8; 64 * 1024];
    let name = ChunkName::from_key(&format!("chunks/00/{}", "00".repeat(32))).expect("a chunk key");
    let _ = codec.decode_chunk(&mut crate::backup::codec::Decoder::new(), &name, &mut data.to_vec(), &mut out);
    if let Ok(lock) = serde_json::from_slice::<crate::backup::lock::LockObject>(data) {
        let again = serde_json::to_vec(&lock).expect("a lock object serializes");
        assert_eq!(serde_json::from_slice::<crate::backup::lock::LockObject>(&again).ok(), Some(lock));
    }
    let text = String::from_utf8_lossy(data);
    if let Some(name) = ChunkName::from_key(&text) {
        assert_eq!(ChunkName::from_key(&name.key()), Some(name), "{text:?} does not round-trip");
    }
    if let Some(bytes) = format::from_hex(&text) {
        assert_eq!(format::to_hex(&bytes), text.to_ascii_lowercase());
    }
    let _ = format::check_backup_id(&text);
}

/// Names read back from LVM and configfs: what parses as hearth's is what it names.
pub fn configfs_names(data: &[u8]) {
    use crate::names;
    let text = String::from_utf8_lossy(data);
    if let Some(id) = names::parse_volume(&text) {
        assert_eq!(names::volume(id), text, "a volume name that is not hearth's");
    }
    if let Some(id) = names::parse_partial_volume(&text) {
        assert_eq!(names::partial_volume(id), text);
    }
    if let Some(id) = names::parse_snapshot(&text) {
        assert_eq!(names::snapshot(id), text);
    }
    if let Some(id) = names::parse_lv_snapshot(&text) {
        assert_eq!(names::lv_snapshot(id), text);
    }
    if let Some(id) = names::parse_lv_partial_volume(&text) {
        assert_eq!(names::lv_partial_volume(id), text);
    }
    let _ = names::is_partial(&text);
    let _ = crate::export::lio::valid_iscsi_name(&text);
    if let Some(chap) = crate::export::Chap::from_provider_auth(&text) {
        let _ = chap.username.len() + chap.password.len();
    }
}

/// An S3 store's answers: error bodies and listings.
pub fn s3_answers(data: &[u8]) {
    crate::backup::s3::fuzz_answers(data);
}

/// The in-process API, made once: a core on the file backend in a temporary
/// directory, a volume, a snapshot and a volume type to name in requests.
struct Harness {
    api: Api,
    project: String,
    volume: String,
    snapshot: String,
    volume_type: String,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();
static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hearth-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        DIR.set(dir.clone()).expect("set once");
        // SAFETY: remove_dir is an extern "C" fn without arguments that does not unwind
        // (it ignores every error), as atexit requires.
        unsafe { libc::atexit(remove_dir) };
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nauth_strategy = \"noauth\"\n\
             [quota]\nquota_volumes = 50\nquota_snapshots = 50\nquota_gigabytes = 500\n\
             [backends.file-1]\ndriver = \"file\"\nvolume_backend_name = \"file\"\n",
            dir.join("data").display().to_string()
        );
        let config = crate::config::Config::parse(&toml, "fuzz.toml").expect("the harness's config");
        let auth = Arc::new(crate::auth::Auth::from_config(&config).expect("noauth"));
        let core = crate::volume::Core::new(config).expect("a core");
        core.start().expect("the core starts");
        let api = Api::new(core, auth);
        let project = "fuzz".to_string();
        let mut h =
            Harness { api, project, volume: String::new(), snapshot: String::new(), volume_type: String::new() };
        let made = |h: &Harness, path: &str, body: &str, kind: &str| -> String {
            let (status, value) = h.call("POST", path, body);
            assert!(status < 300, "POST {path}: {status} {value}");
            value[kind]["id"].as_str().expect("an id").to_string()
        };
        h.volume_type = made(
            &h,
            "/v3/{project}/types",
            r#"{"volume_type": {"name": "fuzz-type", "extra_specs": {}}}"#,
            "volume_type",
        );
        h.volume = made(&h, "/v3/{project}/volumes", r#"{"volume": {"size": 1, "name": "fuzz"}}"#, "volume");
        h.wait_for(&format!("/v3/{{project}}/volumes/{}", h.volume), "volume");
        let body = format!(r#"{{"snapshot": {{"volume_id": "{}", "name": "fuzz"}}}}"#, h.volume);
        h.snapshot = made(&h, "/v3/{project}/snapshots", &body, "snapshot");
        h.wait_for(&format!("/v3/{{project}}/snapshots/{}", h.snapshot), "snapshot");
        h
    })
}

impl Harness {
    /// `{project}`, `{volume}`, `{snapshot}` and `{type}` in `text` replaced by the
    /// harness's.
    fn fill(&self, text: &str) -> String {
        text.replace("{project}", &self.project)
            .replace("{volume}", &self.volume)
            .replace("{snapshot}", &self.snapshot)
            .replace("{type}", &self.volume_type)
    }

    /// One request as the admin at the newest microversion: its status and body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let raw = format!(
            "{method} {path}\nX-Auth-Token: admin:{{project}}\nOpenStack-API-Version: volume latest\n\
             Content-Type: application/json\n\n{body}"
        );
        let (status, body) = self.send(raw.as_bytes()).expect("a request the harness makes parses");
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn wait_for(&self, path: &str, kind: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, v) = self.call("GET", path, "");
            match v[kind]["status"].as_str() {
                Some("available") => return,
                Some(s) if s.starts_with("error") => panic!("the harness's {kind} went to {s}"),
                _ if Instant::now() > deadline => panic!("the harness's {kind} is not available: {v}"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Send a request written as text (`METHOD TARGET`, header lines, an empty line,
    /// the body), with the harness's names filled in; `None` when the server would
    /// have refused it before the API (not a method, a URI or a header). Checks the
    /// answer: no 500, and every error with Cinder's fault body.
    fn send(&self, data: &[u8]) -> Option<(u16, Vec<u8>)> {
        let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &b""[..]),
        };
        let head = self.fill(std::str::from_utf8(head).ok()?);
        let mut lines = head.lines();
        let (method, target) = lines.next()?.split_once(' ')?;
        let method = hyper::Method::from_bytes(method.as_bytes()).ok()?;
        let uri: hyper::Uri = target.parse().ok()?;
        let mut headers = hyper::HeaderMap::new();
        for line in lines {
            let (k, v) = line.split_once(':')?;
            headers.append(
                hyper::header::HeaderName::from_bytes(k.trim().as_bytes()).ok()?,
                hyper::header::HeaderValue::from_str(v.trim()).ok()?,
            );
        }
        let body = match std::str::from_utf8(body) {
            Ok(text) => self.fill(text).into_bytes(),
            Err(_) => body.to_vec(),
        };
        let request = Request { method, uri, headers, body: body.into(), tls: false };
        let shown = format!("{} {}", request.method, request.uri);
        let response = self.api.handle(request);
        let status = response.status().as_u16();
        let body = body_bytes(response);
        assert_ne!(status, 500, "{shown}: 500 {}", String::from_utf8_lossy(&body));
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{shown}: {status} with a body that is not JSON ({e})"));
            let fault = v.as_object().and_then(|o| o.values().next()).unwrap_or(&serde_json::Value::Null);
            assert_eq!(fault["code"].as_u64(), Some(u64::from(status)), "{shown}: {status} without Cinder's body: {v}");
            let message = fault["message"].as_str().unwrap_or_default();
            assert!(!message.trim().is_empty(), "{shown}: {status} without a message: {v}");
        }
        Some((status, body))
    }
}

/// The bytes of a whole response body.
fn body_bytes(response: crate::api::server::Response) -> Vec<u8> {
    use http_body_util::BodyExt;
    smol::block_on(response.into_body().collect()).map(|c| c.to_bytes().to_vec()).unwrap_or_default()
}

/// A whole request, as text (see `Harness::send`), through the API.
pub fn api_request(data: &[u8]) {
    let _ = harness().send(data);
}

/// The routes that take a body, for [`api_body`] (scripts/fuzz-seeds.py reads this
/// table to seed each route: keep one `("METHOD", "path")` per line).
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v3/{project}/volumes"),
    ("PUT", "/v3/{project}/volumes/{volume}"),
    ("POST", "/v3/{project}/volumes/{volume}/action"),
    ("POST", "/v3/{project}/volumes/{volume}/metadata"),
    ("PUT", "/v3/{project}/volumes/{volume}/metadata"),
    ("PUT", "/v3/{project}/volumes/{volume}/metadata/k"),
    ("POST", "/v3/{project}/snapshots"),
    ("PUT", "/v3/{project}/snapshots/{snapshot}"),
    ("POST", "/v3/{project}/snapshots/{snapshot}/action"),
    ("POST", "/v3/{project}/snapshots/{snapshot}/metadata"),
    ("PUT", "/v3/{project}/snapshots/{snapshot}/metadata/k"),
    ("POST", "/v3/{project}/attachments"),
    ("POST", "/v3/{project}/backups"),
    ("POST", "/v3/{project}/backups/import_record"),
    ("POST", "/v3/{project}/volume-transfers"),
    ("POST", "/v3/{project}/os-volume-transfer"),
    ("POST", "/v3/{project}/types"),
    ("PUT", "/v3/{project}/types/{type}"),
    ("POST", "/v3/{project}/types/{type}/extra_specs"),
    ("PUT", "/v3/{project}/types/{type}/extra_specs/k"),
    ("POST", "/v3/{project}/types/{type}/action"),
    ("POST", "/v3/{project}/types/{type}/encryption"),
    ("POST", "/v3/{project}/qos-specs"),
    ("PUT", "/v3/{project}/default-types/{project}"),
    ("POST", "/v3/{project}/group_types"),
    ("POST", "/v3/{project}/groups"),
    ("POST", "/v3/{project}/groups/action"),
    ("POST", "/v3/{project}/group_snapshots"),
    ("PUT", "/v3/{project}/os-quota-sets/{project}"),
    ("PUT", "/v3/{project}/os-quota-class-sets/default"),
    ("PUT", "/v3/{project}/os-services/disable"),
    ("PUT", "/v3/{project}/os-services/disable-log-reason"),
    ("PUT", "/v3/{project}/os-services/set-log"),
];

/// A JSON body for one of the routes that take one: the first byte picks the route
/// (as the admin, at the newest microversion), the rest is the body.
pub fn api_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let (method, path) = BODY_ROUTES[pick as usize % BODY_ROUTES.len()];
    let mut raw = format!(
        "{method} {path}\nX-Auth-Token: admin:{{project}}\nOpenStack-API-Version: volume latest\n\
         Content-Type: application/json\n\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let _ = harness().send(&raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kept input of every target, run once: the corpus and the regressions.
    #[test]
    fn kept_inputs_still_pass() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut ran = 0;
        for (name, target) in TARGETS {
            for kind in ["corpus", "regressions"] {
                let Ok(dir) = std::fs::read_dir(root.join(kind).join(name)) else { continue };
                let mut files: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
                files.sort();
                for f in files {
                    let data = std::fs::read(&f).unwrap();
                    if let Err(e) = std::panic::catch_unwind(|| target(&data)) {
                        let why = e.downcast_ref::<String>().cloned().unwrap_or_default();
                        panic!("{} fails {name}: {why}", f.display());
                    }
                    ran += 1;
                }
            }
        }
        assert!(ran >= TARGETS.len(), "only {ran} kept inputs: is fuzz/corpus there?");
    }

    /// The request text format and the harness's checks work: a good request is
    /// answered, a made-up volume is Cinder's 404, and a head hyper refuses is skipped.
    #[test]
    fn the_api_harness_sends_and_checks() {
        let h = harness();
        let (status, _) = h.send(b"GET /v3/{project}/volumes/{volume}\nX-Auth-Token: demo:{project}\n\n").unwrap();
        assert_eq!(status, 200);
        let missing = b"GET /v3/{project}/volumes/4bd4b1d2-0e1c-4e7e-9b8e-111111111111\nX-Auth-Token: demo:{project}";
        assert_eq!(h.send(missing).unwrap().0, 404);
        assert!(h.send(b"G\xc3T / HTTP").is_none());
        assert!(h.send(b"GET /v3\nnot a header").is_none());
    }
}
