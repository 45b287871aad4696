//! Embeds the core component in snapgit-host (feature `component`): writes
//! `$OUT_DIR/snapgit.wasm`, which `cli::engine::COMPONENT` includes, and its SHA-256 in
//! hex (`snapgit.wasm.sha256`, `cli::engine::COMPONENT_SHA256`).
//!
//! - `SNAPGIT_COMPONENT=<path>`: that component (as `wasm/component/build.sh` prints it)
//!   is used as it is.
//! - Otherwise the component is built here, as `wasm/component/build.sh` builds it: the
//!   guest (`snapgit-component`) for `wasm32-unknown-unknown` with the `component`
//!   profile, then encoded by `snapgit-component-encode`, which refuses a component
//!   importing anything but snapgit's own interfaces. The nested cargo gets a target
//!   folder of its own (next to this build's, `<target>/<profile>/snapgit-component`):
//!   on the outer one it would wait for a lock the outer cargo holds.

use sha2::{Digest, Sha256};
use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// What the nested cargo must not inherit from the outer one: flags and a target meant
/// for the host, the outer target folder, the outer jobserver, clippy as the compiler.
const SCRUBBED: [&str; 11] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> ExitCode {
    println!("cargo:rerun-if-env-changed=SNAPGIT_COMPONENT");
    if env::var_os("CARGO_FEATURE_COMPONENT").is_none() {
        return ExitCode::SUCCESS;
    }
    match embed() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: cannot build the snapgit component to embed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn var(name: &str) -> Result<OsString, String> {
    env::var_os(name).ok_or_else(|| format!("cargo did not set {name}"))
}

fn embed() -> Result<(), String> {
    let out = PathBuf::from(var("OUT_DIR")?);
    let dest = out.join("snapgit.wasm");
    let component = match env::var_os("SNAPGIT_COMPONENT").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        None => build(&out)?,
    };
    let bytes = std::fs::read(&component).map_err(|err| format!("cannot read {}: {err}", component.display()))?;
    // Rewriting the same bytes would make rustc rebuild the crate for nothing.
    write_if_changed(&dest, &bytes)?;
    // Its SHA-256, which names its compiled code in the cache folder
    // (`cli::engine::COMPONENT_SHA256`): computed here, not in every process.
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    write_if_changed(&out.join("snapgit.wasm.sha256"), digest.as_bytes())
}

fn write_if_changed(dest: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(dest).ok().as_deref() != Some(bytes) {
        std::fs::write(dest, bytes).map_err(|err| format!("cannot write {}: {err}", dest.display()))?;
    }
    Ok(())
}

/// Build the component from the workspace's sources; its path.
fn build(out: &Path) -> Result<PathBuf, String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("snapgit-host is not inside the workspace")?
        .to_owned();
    for input in [
        "core/src",
        "core/Cargo.toml",
        "wasm/component",
        "wasm/wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    // OUT_DIR is <target>/[<triple>/]<profile>/build/snapgit-host-<hash>/out.
    let target_dir = out
        .ancestors()
        .nth(3)
        .ok_or_else(|| format!("unexpected OUT_DIR {}", out.display()))?
        .join("snapgit-component");
    let cargo = var("CARGO")?;
    ensure_wasm_target();
    let manifest = root.join("Cargo.toml");
    run(cargo_command(&cargo, &manifest, &target_dir).args([
        "-p",
        "snapgit-component",
        "--target",
        WASM_TARGET,
        "--profile",
        "component",
    ]))?;
    run(cargo_command(&cargo, &manifest, &target_dir).args(["-p", "snapgit-component-encode"]))?;
    let module = target_dir
        .join(WASM_TARGET)
        .join("component")
        .join("snapgit_component.wasm");
    let component = target_dir.join("snapgit.wasm");
    let encoder = target_dir
        .join("debug")
        .join(format!("snapgit-component-encode{}", env::consts::EXE_SUFFIX));
    run(Command::new(encoder).arg(&module).arg(&component))?;
    Ok(component)
}

fn cargo_command(cargo: &OsString, manifest: &Path, target_dir: &Path) -> Command {
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--locked")
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for name in SCRUBBED {
        command.env_remove(name);
    }
    command
}

/// Add the wasm target with rustup when it is missing, as `wasm/component/build.sh` does;
/// without rustup the build below says what is missing.
fn ensure_wasm_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if let Ok(listed) = installed
        && listed.status.success()
        && !String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|l| l.trim() == WASM_TARGET)
    {
        println!("cargo:warning=adding the {WASM_TARGET} target with rustup, to build the snapgit component");
        let _ = Command::new("rustup").args(["target", "add", WASM_TARGET]).status();
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    // A build script's stdout is cargo's instructions; the tools' output goes to stderr.
    command.stdout(std::io::stderr());
    let status = command.status().map_err(|err| format!("cannot run {shown}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}
