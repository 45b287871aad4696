//! Encode the snapgit-component core module (built for `wasm32-unknown-unknown`, with
//! the WIT world wit-bindgen embeds in it) as a WebAssembly component, and refuse one
//! that imports anything but snapgit's own interfaces.
//!
//! ```text
//! snapgit-component-encode <module.wasm> <component.wasm>
//! ```

use std::process::ExitCode;

/// The only interfaces the component may import.
const ALLOWED_IMPORTS: [&str; 3] = ["snapgit:core/types@", "snapgit:core/storage@", "snapgit:core/locks@"];

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
    let imports = imports(&component)?;
    if let Some(other) = imports
        .iter()
        .find(|i| !ALLOWED_IMPORTS.iter().any(|a| i.starts_with(a)))
    {
        return Err(format!(
            "the component imports {other:?}; it may import only snapgit's own interfaces ({})",
            ALLOWED_IMPORTS.join(", ")
        ));
    }
    std::fs::write(output, &component).map_err(|err| format!("cannot write {output}: {err}"))?;
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
