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
