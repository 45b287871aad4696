use snapgit_core::path::{self, Reason};

#[test]
fn valid_paths_split_into_components() {
    let parts = path::validate("memory/2026/notes.md".into(), false).unwrap();
    assert_eq!(parts, ["memory", "2026", "notes.md"]);
    for ok in [
        "a",
        "a b/c:d",
        ".gitignore",
        ".github/x",
        "git",
        "con",
        "dir/.gitkeep",
        "ünï/cödé",
    ] {
        assert!(path::validate(ok.into(), false).is_ok(), "{ok}");
    }
}

#[test]
fn symlinks_may_not_be_gitmodules() {
    assert!(path::validate(".gitmodules".into(), false).is_ok());
    let err = path::validate(".gitmodules".into(), true).unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
}

#[test]
fn errors_name_the_path_and_reason() {
    let err = path::validate("a/../b".into(), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid path \"a/../b\": it has a '.' or '..' component"
    );
}
