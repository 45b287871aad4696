//! Every face exposes the same operations. Core's `api::Request` lists them; the
//! component's WIT `request` variant must have a case for each; the npm package's engine
//! (`wasm/src/js.rs`) must export each, and nothing else that runs an operation; the npm
//! API (`js/src/api.ts`) must call each; and the `snapgit` command must have the command
//! (and flag) that runs each, as the table below says. Adding an operation to one face
//! and not the others fails here.

#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

use std::collections::BTreeSet;

mod fields;

fn read(path: &str) -> String {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::fs::read_to_string(format!("{full}/{path}")).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The text between the `{` after `start` and its matching `}`.
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let open = at + text[at..].find('{').unwrap();
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("{start:?} is not closed")
}

/// The operations of core's `api::Request`, by the names `Request::name` gives them.
fn core_operations() -> BTreeSet<String> {
    let api = read("core/src/api.rs");
    block(&api, "pub fn name(&self)")
        .lines()
        .filter_map(|line| {
            line.split_once("=> \"")
                .map(|(_, name)| name.trim_end_matches("\",").to_owned())
        })
        .collect()
}

/// The cases of the WIT world's `request` variant, kebab-case.
fn wit_operations() -> BTreeSet<String> {
    let wit = read("wasm/wit/snapgit.wit");
    block(&wit, "variant request")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(|line| line.split(['(', ',']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_component_has_every_operation_of_core() {
    let core = core_operations();
    assert!(core.len() >= 20, "core lists its operations: {core:?}");
    assert_eq!(
        wit_operations(),
        core,
        "the WIT request variant and core's api::Request differ"
    );
    let wit = read("wasm/wit/snapgit.wit");
    let exports: Vec<&str> = block(&wit, "interface operations")
        .lines()
        .filter_map(|line| line.trim().split_once(": func").map(|(name, _)| name))
        .collect();
    assert_eq!(
        exports,
        ["run"],
        "the component runs every operation through one export"
    );
}

/// The operations the npm package's engine starts: the names its `run` reads a packed
/// request for (`"commit" => …`).
fn js_operations() -> BTreeSet<String> {
    let js = read("wasm/src/js.rs");
    block(&js, "pub fn run(&self, op: &str")
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix('"')?
                .split_once("\" =>")
                .map(|(name, _)| name.to_owned())
        })
        .collect()
}

fn camel(kebab: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in kebab.chars() {
        match c {
            '-' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Each operation and the `snapgit` command that runs it: (enum, variant, a field of the
/// variant that selects it, or `""`).
const CLI: &[(&str, (&str, &str, &str))] = &[
    ("create-repo", ("RepoCommand", "Create", "")),
    ("list-repos", ("RepoCommand", "List", "")),
    ("delete-repo", ("RepoCommand", "Delete", "")),
    ("create-branch", ("BranchCommand", "Create", "")),
    // `branch list` prints every branch with its head.
    ("list-branches", ("BranchCommand", "List", "")),
    ("read-head", ("BranchCommand", "List", "")),
    ("delete-branch", ("BranchCommand", "Delete", "")),
    // Every command's ref argument is resolved by it; `show` takes one.
    ("resolve", ("Command", "Show", "reference")),
    ("commit", ("Command", "Commit", "")),
    ("restore", ("Command", "Restore", "")),
    ("log", ("Command", "Log", "")),
    ("file-log", ("Command", "Log", "numstat")),
    ("read-file", ("Command", "Cat", "")),
    ("read-files", ("Command", "Cat", "recursive")),
    ("list-tree", ("Command", "Ls", "")),
    ("read-commit", ("Command", "Show", "")),
    ("diff", ("Command", "Diff", "")),
    ("diff-folder", ("Command", "Diff", "worktree")),
    // `rollback` plans its writes with `checkout`.
    ("checkout", ("Command", "Rollback", "")),
    ("prune", ("Command", "Prune", "")),
    ("footprint", ("Command", "Status", "")),
    ("gc", ("Command", "Gc", "")),
    ("compact", ("Command", "Compact", "")),
    ("cap", ("Command", "Cap", "")),
    ("push", ("Command", "Push", "")),
    // `import` is a fetch of every branch and tag too.
    ("fetch", ("Command", "Fetch", "")),
];

#[test]
fn the_component_and_the_npm_package_have_the_same_operations() {
    let wit = wit_operations();
    let js = js_operations();
    assert!(wit.len() >= 20, "the WIT world lists its operations: {wit:?}");
    assert_eq!(
        wit.difference(&js).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the component, not in the npm package's engine"
    );
    assert_eq!(
        js.difference(&wit).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the npm package's engine, not in the component"
    );
    let api = read("js/src/api.ts");
    for name in &js {
        assert!(
            api.contains(&format!("e.run(\"{name}\"")),
            "js/src/api.ts never runs {name}"
        );
    }
}

#[test]
fn the_snapgit_command_runs_every_operation() {
    let wit = wit_operations();
    let mapped: BTreeSet<String> = CLI.iter().map(|(op, _)| (*op).to_owned()).collect();
    assert_eq!(
        wit, mapped,
        "every operation of the WIT world, and only those, has a command"
    );
    let cli = read("host/src/bin/snapgit.rs");
    for (op, (enum_name, variant, field)) in CLI {
        let body = block(&cli, &format!("enum {enum_name} "));
        let at = body
            .find(&format!("\n    {variant}"))
            .unwrap_or_else(|| panic!("{op}: no variant {enum_name}::{variant}"));
        let rest = &body[at + 5..];
        let end = rest
            .find("\n    ///")
            .or_else(|| rest.find("\n    #["))
            .unwrap_or(rest.len());
        assert!(
            rest[..end].contains(&format!("{field}:")) || field.is_empty(),
            "{op}: {enum_name}::{variant} has no `{field}`"
        );
    }
}
