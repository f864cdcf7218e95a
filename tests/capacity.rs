//! Pool figures kept without walking the pool: after many random changes (some
//! failing) the figures hearth keeps by adjusting them equal a full measurement (the
//! one a restart takes, and the files counted here), quota usage equals what the
//! records add up to, and concurrent creates never overcommit a pool.

mod common;

use common::{Daemon, PROJECT};
use serde_json::{json, Value};

/// The file backend with a pool of 12 GiB that thin volumes may over-subscribe four
/// times; no periodic report during the test, so that only the changes' own
/// accounting moves the figures.
const POOL: &str = r#"
report_interval = 86400
[quota]
quota_volumes = -1
quota_gigabytes = -1
[backends.file-1]
driver = "file"
size_gb = 12
max_over_subscription_ratio = 4.0
volume_clear = "none"
"#;

fn pool(d: &Daemon) -> Value {
    let p = d.get("/scheduler-stats/get_pools?detail=True").json();
    p["pools"][0]["capabilities"].clone()
}

/// Every volume's record, once none is in a transitional state.
fn settled_volumes(d: &Daemon) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let all = d.get("/volumes/detail?all_tenants=True").json()["volumes"].as_array().unwrap().clone();
        let busy: Vec<&Value> = all
            .iter()
            .filter(|v| !matches!(v["status"].as_str().unwrap(), "available" | "error" | "error_extending"))
            .collect();
        if busy.is_empty() {
            return all;
        }
        assert!(std::time::Instant::now() < deadline, "volumes never settled: {busy:?}\n{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The figures a full measurement compares: what the pool has, holds and gives.
fn figures(caps: &Value) -> Value {
    json!({
        "total_capacity_gb": caps["total_capacity_gb"],
        "free_capacity_gb": caps["free_capacity_gb"],
        "provisioned_capacity_gb": caps["provisioned_capacity_gb"],
        "total_volumes": caps["total_volumes"],
    })
}

#[test]
fn figures_after_a_thousand_random_changes_equal_a_full_measurement() {
    let mut d = Daemon::start_with(POOL);
    let r = d.post("/types", json!({"volume_type": {"name": "thick", "extra_specs": {"provisioning:type": "thick"}}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let seed = std::env::var("HEARTH_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_u64);
    eprintln!("seed {seed:#x} (HEARTH_TEST_SEED)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids: Vec<String> = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..1000 {
        let pick = |rng: &mut fastrand::Rng, ids: &[String]| ids[rng.usize(..ids.len())].clone();
        let r = match rng.u64(..100) {
            // Creates: thin of 1-4 GiB, thick of 1 GiB, and some no pool can hold.
            n if n < 35 || ids.is_empty() => {
                let body = match rng.u64(..10) {
                    0 => json!({"size": 1, "volume_type": "thick"}),
                    1 => json!({"size": 100}),
                    _ => json!({"size": 1 + rng.u64(..4)}),
                };
                d.post("/volumes", json!({ "volume": body }))
            }
            n if n < 50 => {
                let src = pick(&mut rng, &ids);
                d.post("/volumes", json!({"volume": {"size": 4, "source_volid": src}}))
            }
            n if n < 70 => {
                let id = pick(&mut rng, &ids);
                let size = d.get(&format!("/volumes/{id}")).json()["volume"]["size"].as_u64().unwrap_or(1);
                d.post(&format!("/volumes/{id}/action"), json!({"os-extend": {"new_size": size + 1 + rng.u64(..2)}}))
            }
            _ => {
                let id = pick(&mut rng, &ids);
                d.delete(&format!("/volumes/{id}"))
            }
        };
        match r.status {
            202 => {
                accepted += 1;
                if !r.text.is_empty() {
                    ids.push(r.json()["volume"]["id"].as_str().unwrap().to_string());
                }
            }
            400 | 404 | 413 => refused += 1,
            other => panic!("change {i}: {other} {}\n{}", r.text, d.log()),
        }
        // Let the background work catch up now and then, so that most changes find
        // their volume at rest.
        if i % 25 == 24 {
            settled_volumes(&d);
            let live: Vec<String> = settled_volumes(&d).iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
            ids.retain(|id| live.contains(id));
        }
    }
    let volumes = settled_volumes(&d);
    let failed = volumes.iter().filter(|v| v["status"] != "available").count();
    eprintln!("{accepted} accepted, {refused} refused, {} volumes left ({failed} failed)", volumes.len());
    assert!(refused > 0 && failed > 0, "the run should include failing changes");

    // The kept figures against the volume files as they are.
    let kept = pool(&d);
    let on_disk: Vec<std::fs::Metadata> = d
        .volume_files("file-1")
        .iter()
        .filter(|n| n.starts_with("volume-"))
        .map(|n| std::fs::metadata(d.data_dir().join("volumes/file-1").join(n)).unwrap())
        .collect();
    let gib = |b: u64| (b as f64 / (1u64 << 30) as f64 * 100.0).round() / 100.0;
    let provisioned: u64 = on_disk.iter().map(|m| m.len()).sum();
    assert_eq!(kept["total_volumes"], on_disk.len() as u64, "{kept}");
    assert_eq!(kept["provisioned_capacity_gb"].as_f64().unwrap(), gib(provisioned), "{kept}");
    let available: Vec<&Value> = volumes.iter().filter(|v| v["status"] == "available").collect();
    assert_eq!(on_disk.len(), available.len());
    // ... and against the full measurement a start-up takes.
    d.restart();
    let measured = pool(&d);
    assert_eq!(figures(&kept), figures(&measured), "kept figures differ from a full measurement");

    // Quota usage is what the records add up to.
    let q = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json()["quota_set"].clone();
    let size_sum: u64 = volumes.iter().map(|v| v["size"].as_u64().unwrap()).sum();
    assert_eq!(q["volumes"]["in_use"], volumes.len() as u64, "{q}");
    assert_eq!(q["gigabytes"]["in_use"], size_sum, "{q}");
    assert_eq!(q["volumes"]["reserved"], 0, "{q}");
    assert_eq!(q["gigabytes"]["reserved"], 0, "{q}");
}

#[test]
fn a_hundred_concurrent_creates_on_a_pool_for_fifty_make_fifty() {
    let d = Daemon::start_with(&POOL.replace("size_gb = 12", "size_gb = 50").replace("4.0", "1.0"));
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100).map(|_| s.spawn(|| d.create_volume(json!({"size": 1})))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut made = 0;
    for id in &ids {
        let v = d.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
        made += usize::from(v["status"] == "available");
    }
    assert_eq!(made, 50, "100 creates of 1 GiB on a pool of 50 GiB");
    let caps = pool(&d);
    assert_eq!(caps["provisioned_capacity_gb"].as_f64().unwrap(), 50.0, "{caps}");
    assert_eq!(caps["total_volumes"], 50, "{caps}");
    // Deleting them gives it all back, in the figures too.
    for id in &ids {
        assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
    }
    for id in &ids {
        d.wait_gone(id);
    }
    let caps = pool(&d);
    assert_eq!(caps["provisioned_capacity_gb"].as_f64().unwrap(), 0.0, "{caps}");
    assert_eq!(caps["total_volumes"], 0, "{caps}");
}
