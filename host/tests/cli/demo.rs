//! `scripts/demo.sh`, the command sequence the README shows, runs as written.

use std::process::Command;

use crate::support::{BIN, git};

#[test]
fn the_readme_demo_runs() {
    let work = tempfile::tempdir().expect("a temp folder");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/demo.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(work.path())
        // The binary these tests built: the script's build step is cargo's job here.
        .env("SNAPGIT_BIN", BIN)
        .env_remove("SNAPGIT_STORE")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    // The log, the diff and the restored file are all printed.
    assert!(stdout.contains("turn 2\n") && stdout.contains("turn 1\n"), "{stdout}");
    assert!(
        stdout.contains("-prefers: short answers\n+prefers: detailed answers\n"),
        "{stdout}"
    );
    assert!(stdout.contains("prefers: short answers\n"), "{stdout}");
    let store = work.path().join(".snapgit");
    let main = "refs/namespaces/default/refs/heads/main";
    assert_eq!(git(&store, &["log", "-1", "--format=%s", main]), "back to turn 1\n");
    assert_eq!(git(&store, &["rev-list", "--count", main]), "4\n");
}
