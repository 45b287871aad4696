//! Encode the snapgit-component core module (built for `wasm32-unknown-unknown`, with
//! the WIT world wit-bindgen embeds in it) as a WebAssembly component, and refuse one
//! that imports anything but snapgit's own interfaces.
//!
//! ```text
//! snapgit-component-encode <module.wasm> <component.wasm>
//! ```

use std::process::ExitCode;

/// The only interfaces the component may import.
const ALLOWED_IMPORTS: [&str; 5] = [
    "snapgit:core/types@",
    "snapgit:core/storage@",
    "snapgit:core/locks@",
    "snapgit:core/wait@",
    "snapgit:core/http@",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: snapgit-component-encode <module.wasm> <component.wasm>");
        return ExitCode::from(2);
    };
    match encode(input, output) {
        Ok(imports) => {
            eprintln!("{output}: imports {}", imports.join(", "));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn encode(input: &str, output: &str) -> Result<Vec<String>, String> {
    let module = std::fs::read(input).map_err(|err| format!("cannot read {input}: {err}"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|err| format!("cannot encode {input} as a component: {err:#}"))?;
    let imports = check(&component)?;
    std::fs::write(output, &component).map_err(|err| format!("cannot write {output}: {err}"))?;
    Ok(imports)
}

/// The component's imports, or why it may not be used: it imports something else.
fn check(component: &[u8]) -> Result<Vec<String>, String> {
    let imports = imports(component)?;
    if let Some(other) = imports
        .iter()
        .find(|i| !ALLOWED_IMPORTS.iter().any(|a| i.starts_with(a)))
    {
        return Err(format!(
            "the component imports {other:?}; it may import only snapgit's own interfaces ({})",
            ALLOWED_IMPORTS.join(", ")
        ));
    }
    Ok(imports)
}

/// The names of the component's own imports (not those of components nested in it,
/// which wit-component uses to type its exports).
fn imports(component: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.map_err(|err| format!("cannot parse the component: {err}"))? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|err| format!("cannot parse an import: {err}"))?;
                    names.push(import.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component of the snapgit world plus `extra` lines, with dummy code.
    fn component(extra: &str) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        resolve
            .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../wit"))
            .expect("the snapgit WIT parses");
        let probe = format!(
            "package test:probe;\ninterface env {{ get: func() -> string; }}\n\
             world probe {{ include snapgit:core/snapgit@0.1.0; {extra} }}"
        );
        let package = resolve.push_str("probe.wit", &probe).expect("the probe WIT parses");
        let world = resolve.select_world(&[package], Some("probe")).expect("the world");
        let mangling = wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync);
        let mut module = wit_component::dummy_module(&resolve, world, mangling);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            false,
        )
        .expect("metadata");
        wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .expect("a component")
    }

    #[test]
    fn the_snapgit_world_passes() {
        let imports = check(&component("")).expect("only snapgit's imports");
        assert_eq!(imports.len(), 5, "{imports:?}");
    }

    #[test]
    fn any_other_import_is_refused() {
        let err = check(&component("import env;")).expect_err("an import of another interface");
        assert!(err.contains("test:probe/env"), "{err}");
        let err = check(&component("import now: func() -> u64;")).expect_err("an imported function");
        assert!(err.contains("\"now\""), "{err}");
    }
}
