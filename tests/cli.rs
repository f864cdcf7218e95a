//! The command line: help, check-config, and configurations refused at start with a
//! message that names the key.

use std::process::Command;

fn hearthd(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearthd")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn help_lists_commands_and_flags() {
    let (code, text) = hearthd(&["--help"]);
    assert_eq!(code, 0);
    for word in ["check-config", "--config", "--listen", "--data-dir"] {
        assert!(text.contains(word), "{word} missing from --help:\n{text}");
    }
}

#[test]
fn check_config_accepts_the_fixture_and_checks_backends() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/file.toml");
    let data = dir.path().to_str().unwrap();
    let (code, text) = hearthd(&["check-config", "--config", fixture, "--data-dir", data]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("backend file-1") && text.contains("configuration ok"), "{text}");
    // the embedded default too
    let (code, text) = hearthd(&["check-config", "--data-dir", data]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn bad_configurations_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown_key = 1\n[backends.f]\ndriver = \"file\"\n", "unknown_key"),
        ("[backends.f]\ndriver = \"file\"\nreserved_percentage = 150\n", "backends.f.reserved_percentage"),
        ("[backends.f]\ndriver = \"file\"\nvolume_clear = \"shred\"\n", "volume_clear"),
        ("listen = 12\n[backends.f]\ndriver = \"file\"\n", "listen"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for cmd in [&["check-config"][..], &[][..]] {
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend(["--config", path.to_str().unwrap()]);
            let (code, out) = hearthd(&args);
            assert_eq!(code, 2, "{text}: {out}");
            assert!(out.contains(key), "{text}: message does not name {key}: {out}");
        }
    }
    let (code, out) = hearthd(&["--config", "/nonexistent/hearth.toml"]);
    assert_eq!(code, 2);
    assert!(out.contains("/nonexistent/hearth.toml"), "{out}");
}

#[test]
fn a_damaged_store_refuses_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let store = data.join("hearth.db");
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&store, &garbage).unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[backends.f]\ndriver = \"file\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (code, out) = hearthd(&args);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("not a sound SQLite database") && out.contains("changed nothing"), "{out}");
    assert_eq!(std::fs::read(&store).unwrap(), garbage, "the store is left as it was");
    let names: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["hearth.db"], "nothing was made beside it");
}

fn mount(args: &[&str]) -> bool {
    Command::new("mount").args(args).status().is_ok_and(|s| s.success())
}

/// A data directory on a read-only filesystem (a tmpfs remounted read-only; needs
/// root, as CI has: elsewhere it says so and passes).
#[test]
fn a_read_only_data_dir_refuses_start_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if !nix::unistd::geteuid().is_root()
        || !mount(&["-t", "tmpfs", "-o", "size=64m", "hearth-test", data.to_str().unwrap()])
    {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            Command::new("umount").arg(self.0).status().ok();
        }
    }
    let _unmount = Unmount(&data);
    let config = dir.path().join("hearth.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n[backends.f]\ndriver = \"file\"\n").unwrap();
    let args = ["--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    // A store made and left by a clean stop.
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_hearthd")).args(args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready in") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0, "hearthd ended before it was ready");
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    std::io::copy(&mut err, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    let store = std::fs::read(data.join("hearth.db")).unwrap();
    assert!(mount(&["-o", "remount,ro", data.to_str().unwrap()]));
    let (code, out) = hearthd(&args);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Read-only file system") && out.contains(data.to_str().unwrap()), "{out}");
    assert_eq!(std::fs::read(data.join("hearth.db")).unwrap(), store);
}
