//! What identity costs: `cargo bench --bench identity`.
//!
//! Starts a real Keystone (scripts/identity/keystone.sh, its venv made on first use)
//! and two release hearthds on the file backend with the same volumes: one `noauth`,
//! one `keystone`. Over keep-alive connections, in alternating rounds so that both see
//! the same machine:
//!
//! - p50/p99 of `GET /volumes/{id}` and `GET /volumes/detail?limit=1000`, noauth
//!   against keystone with a warm token cache (target: within 5%);
//! - a cold validation: the first request with a token hearth has not seen (Keystone's
//!   `GET /v3/auth/tokens` on the request's path), against the same request warm;
//! - the same show with http_basic, a warm cache of verified passwords.
//!
//! Figures are printed as a Markdown table for the README; nothing is asserted.

use std::path::Path;
use std::process::Command;

use base64::Engine;

mod support;

use support::{percentiles, start, stop, timed, Conn, Hearthd};

const VOLUMES: usize = 1000;
const ROUNDS: usize = 5;
const SHOWS: usize = 2000;
const LISTS: usize = 40;
const COLD: usize = 60;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn backend(dir: &Path, name: &str) -> String {
    format!(
        "data_dir = {:?}\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n[backends.file]\ndriver = \"file\"\nsize_gb = 100000\nvolume_clear = \"none\"\n",
        dir.join(name).display().to_string()
    )
}

fn fill(c: &mut Conn) -> Vec<String> {
    (0..VOLUMES)
        .map(|_| {
            let (s, v) = c.req("POST", "/volumes", Some(r#"{"volume":{"size":1,"name":"bench"}}"#));
            assert_eq!(s, 202, "{v}");
            v["volume"]["id"].as_str().unwrap().to_string()
        })
        .collect()
}

struct Keystone {
    dir: tempfile::TempDir,
    identity: serde_json::Value,
}

impl Keystone {
    fn start() -> Keystone {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new(repo().join("scripts/identity/keystone.sh"))
            .arg("start")
            .arg(dir.path())
            .status()
            .expect("running scripts/identity/keystone.sh");
        assert!(ok.success(), "keystone.sh start failed");
        let identity = serde_json::from_slice(&std::fs::read(dir.path().join("identity.json")).unwrap()).unwrap();
        Keystone { dir, identity }
    }

    fn user(&self, name: &str) -> &serde_json::Value {
        &self.identity["users"][name]
    }

    /// A project-scoped token of `user` (through the keystone venv's python, which
    /// has an HTTP client).
    fn token(&self, user: &str) -> String {
        let u = self.user(user);
        let script = format!(
            "import requests,sys; r=requests.post('{}/auth/tokens?nocatalog', json={{'auth':{{'identity':{{'methods':['password'],'password':{{'user':{{'id':'{}','password':'{}'}}}}}},'scope':{{'project':{{'id':'{}'}}}}}}}}, timeout=30); r.raise_for_status(); print(r.headers['X-Subject-Token'])",
            self.identity["auth_url"].as_str().unwrap(),
            u["id"].as_str().unwrap(),
            u["password"].as_str().unwrap(),
            u["project_id"].as_str().unwrap(),
        );
        let python = repo().join(".venv-keystone/bin/python");
        let out = Command::new(python).args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn stop(&self) {
        let _ = Command::new(repo().join("scripts/identity/keystone.sh")).arg("stop").arg(self.dir.path()).status();
    }
}

fn main() {
    let ks = Keystone::start();
    let dir = tempfile::tempdir().unwrap();
    let project = ks.user("demo")["project_id"].as_str().unwrap().to_string();
    let hearth = ks.user("hearth");
    let keystone_cfg = format!(
        "auth_strategy = \"keystone\"\n{}[keystone_authtoken]\nauth_url = {:?}\nusername = {:?}\npassword = {:?}\n\
         project_name = \"service\"\n",
        backend(dir.path(), "keystone"),
        ks.identity["keystone_url"].as_str().unwrap(),
        hearth["name"].as_str().unwrap(),
        hearth["password"].as_str().unwrap(),
    );
    for sub in ["n", "k", "n2"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let noauth: Hearthd = start(&backend(dir.path(), "noauth"), &dir.path().join("n"));
    let keystone: Hearthd = start(&keystone_cfg, &dir.path().join("k"));
    let token = ks.token("demo");

    let mut na = Conn::new(&noauth.addr, &project);
    let mut kc = Conn::with_token(&keystone.addr, &project, &token);
    let na_ids = fill(&mut na);
    let k_ids = fill(&mut kc);

    let (mut show_n, mut show_k, mut list_n, mut list_k) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        show_n.extend(timed(SHOWS, |i| {
            na.req_raw("GET", &format!("/volumes/{}", na_ids[i % VOLUMES]), None);
        }));
        show_k.extend(timed(SHOWS, |i| {
            kc.req_raw("GET", &format!("/volumes/{}", k_ids[i % VOLUMES]), None);
        }));
        list_n.extend(timed(LISTS, |_| {
            na.req_raw("GET", "/volumes/detail?limit=1000", None);
        }));
        list_k.extend(timed(LISTS, |_| {
            kc.req_raw("GET", "/volumes/detail?limit=1000", None);
        }));
    }

    // Cold validations: the first request with each new token, then the same warm.
    let tokens: Vec<String> = (0..COLD).map(|_| ks.token("demo")).collect();
    let (mut cold, mut warm) = (vec![], vec![]);
    for (i, t) in tokens.iter().enumerate() {
        kc.set_token(t);
        let path = format!("/volumes/{}", k_ids[i]);
        cold.extend(timed(1, |_| {
            let (s, _) = kc.req_raw("GET", &path, None);
            assert_eq!(s, 200);
        }));
        warm.extend(timed(1, |_| {
            kc.req_raw("GET", &path, None);
        }));
    }
    stop(keystone);
    stop(noauth);
    ks.stop();

    // http_basic: an account of the same project; bcrypt cost 10 (htpasswd -B's default).
    let basic_dir = dir.path().join("basic");
    std::fs::create_dir_all(&basic_dir).unwrap();
    let htpasswd = basic_dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("bench:{}\n", bcrypt::hash("bench-pw", 10).unwrap())).unwrap();
    let basic_cfg = format!(
        "auth_strategy = \"http_basic\"\nhttp_basic_auth_user_file = {:?}\n{}[http_basic_users]\n\
         bench = {{ project_id = {project:?}, roles = [\"member\"] }}\n",
        htpasswd.display().to_string(),
        backend(dir.path(), "basic"),
    );
    let basic = start(&basic_cfg, &basic_dir);
    let mut bc = Conn::new(&basic.addr, &project);
    bc.set_header(
        "Authorization",
        &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:bench-pw")),
    );
    let b_ids = fill(&mut bc);
    let mut show_b = vec![];
    let mut show_n2 = vec![];
    let noauth2: Hearthd = start(&backend(dir.path(), "noauth"), &dir.path().join("n2"));
    let mut na2 = Conn::new(&noauth2.addr, &project);
    for _ in 0..ROUNDS {
        show_n2.extend(timed(SHOWS, |i| {
            na2.req_raw("GET", &format!("/volumes/{}", na_ids[i % VOLUMES]), None);
        }));
        show_b.extend(timed(SHOWS, |i| {
            bc.req_raw("GET", &format!("/volumes/{}", b_ids[i % VOLUMES]), None);
        }));
    }
    stop(basic);
    stop(noauth2);

    let (sn50, sn99) = percentiles(show_n);
    let (sk50, sk99) = percentiles(show_k);
    let (ln50, ln99) = percentiles(list_n);
    let (lk50, lk99) = percentiles(list_k);
    let (c50, c99) = percentiles(cold);
    let (w50, w99) = percentiles(warm);
    let (bn50, bn99) = percentiles(show_n2);
    let (b50, b99) = percentiles(show_b);
    let pct = |a: f64, b: f64| (b / a - 1.0) * 100.0;
    println!("| measure | noauth | keystone (warm token cache) | difference |");
    println!("|---|---|---|---|");
    println!(
        "| show `GET /volumes/{{id}}` p50 / p99 | {sn50:.3} ms / {sn99:.3} ms | {sk50:.3} ms / {sk99:.3} ms | {:+.1}% |",
        pct(sn50, sk50)
    );
    println!(
        "| list `GET /volumes/detail?limit=1000` p50 / p99 | {ln50:.2} ms / {ln99:.2} ms | {lk50:.2} ms / {lk99:.2} ms | {:+.1}% |",
        pct(ln50, lk50)
    );
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| show with a token hearth has not seen (cold: Keystone validates it) p50 / p99 | {c50:.2} ms / {c99:.2} ms |"
    );
    println!("| the same show right after (warm) p50 / p99 | {w50:.3} ms / {w99:.3} ms |");
    println!(
        "| show, http_basic (warm) against noauth p50 | {b50:.3} ms against {bn50:.3} ms ({:+.1}%); p99 {b99:.3} / {bn99:.3} ms |",
        pct(bn50, b50)
    );
}
