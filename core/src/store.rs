//! The layout of a store: a bare git repository in an object-storage prefix, with one git
//! namespace per repo.
//!
//! ```text
//! HEAD                                        ref: refs/heads/main
//! objects/ab/cdef...                          loose objects, shared by every repo
//! refs/namespaces/<repo>/refs/heads/<branch>  <hex id>\n
//! ```
//!
//! Keys are built only from validated names, so no name can reach outside its prefix or
//! another repo's refs; `git --namespace=<repo> log <branch>` works on a copy of a store.

use bstr::ByteSlice;

/// The longest repo or branch name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// The prefix under which every repo's refs live.
pub const NAMESPACES: &str = "refs/namespaces/";

/// The prefix of every loose object.
pub const OBJECTS: &str = "objects/";

/// The content of the store's `HEAD`, which makes a copy of the store a git repository.
pub const HEAD: &str = "ref: refs/heads/main\n";

/// `true` for a lock file of git's lock protocol (`<name>.lock`): a ref or file being
/// written, never a ref itself (no ref name ends in `.lock`). Storage lists them like
/// any key; operations that read refs leave them out, and GC removes stale ones.
pub fn is_lock(key: &str) -> bool {
    key.ends_with(".lock")
}

/// A listing of refs without the lock files among them.
pub(crate) fn without_locks(mut listed: Vec<Listed>) -> Vec<Listed> {
    listed.retain(|l| !is_lock(&l.key));
    listed
}

/// Which kind of name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A repo (git namespace) name.
    Repo,
    /// A branch name.
    Branch,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Repo => "repo",
            NameKind::Branch => "branch",
        })
    }
}

/// A repo or branch name that git's ref-name rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct NameError {
    /// Repo or branch.
    pub kind: NameKind,
    /// The offending name, as given.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A validated repo name: one ref component (no `/`), as `git check-ref-format` allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// A validated branch name, as `git check-ref-format --branch` allows (may contain `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchName(String);

fn check(kind: NameKind, name: &str, full: &str) -> Result<(), NameError> {
    let fail = |reason: String| NameError {
        kind,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(fail("it is empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(fail(format!("it is longer than {MAX_NAME_BYTES} bytes")));
    }
    if name.starts_with('-') {
        return Err(fail("it starts with '-'".into()));
    }
    if name.chars().any(|c| c.is_control() || c == ' ') {
        return Err(fail("it contains a space or control character".into()));
    }
    gix_validate::reference::branch_name(full.as_bytes().as_bstr()).map_err(|err| fail(err.to_string()))?;
    Ok(())
}

impl RepoName {
    /// Validate `name` as a repo name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.contains('/') {
            return Err(NameError {
                kind: NameKind::Repo,
                reason: "it contains '/'".into(),
                name,
            });
        }
        check(NameKind::Repo, &name, &format!("refs/heads/{name}"))?;
        Ok(RepoName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of this repo's refs: `refs/namespaces/<repo>/refs/`.
    pub fn refs_prefix(&self) -> String {
        format!("{NAMESPACES}{}/refs/", self.0)
    }

    /// The prefix of this repo's branches: `refs/namespaces/<repo>/refs/heads/`.
    pub fn branches_prefix(&self) -> String {
        format!("{NAMESPACES}{}/refs/heads/", self.0)
    }

    /// The key of `branch` in this repo.
    pub fn branch_key(&self, branch: &BranchName) -> String {
        format!("{}{}", self.branches_prefix(), branch.0)
    }

    /// The name of the advisory lock that guards commits to `branch`.
    pub fn lock_name(&self, branch: &BranchName) -> String {
        format!("locks/{}/{}", self.0, branch.0)
    }
}

impl BranchName {
    /// Validate `name` as a branch name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check(NameKind::Branch, &name, &format!("refs/heads/{name}"))?;
        Ok(BranchName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for BranchName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse a ref key back into its repo and branch; `None` for keys outside the layout.
pub fn parse_branch_key(key: &str) -> Option<(RepoName, BranchName)> {
    let rest = key.strip_prefix(NAMESPACES)?;
    // A repo name has no '/', so it ends at the first one (and a one-byte split needs no
    // substring searcher in the `.wasm`).
    let (repo, refs) = rest.split_once('/')?;
    let branch = refs.strip_prefix("refs/heads/")?;
    Some((RepoName::new(repo).ok()?, BranchName::new(branch).ok()?))
}

/// Parse an object key (`objects/ab/cdef...`) back into its id.
pub fn parse_object_key(key: &str, hash_kind: gix_hash::Kind) -> Option<gix_hash::ObjectId> {
    let rest = key.strip_prefix(OBJECTS)?;
    let (fan, tail) = rest.split_once('/')?;
    if fan.len() != 2 || fan.len() + tail.len() != hash_kind.len_in_hex() {
        return None;
    }
    crate::id::from_hex(format!("{fan}{tail}").as_bytes())
}

/// A ref's value and the storage's version of it (an ETag, a generation, a counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// The commit the ref points at.
    pub value: gix_hash::ObjectId,
    /// The backend's version of the stored ref, passed back in a compare-and-swap.
    pub version: String,
}

/// One listed key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// The key, relative to the store.
    pub key: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Last modification, in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// Names cross as their text; a name read back is checked by git's rules.
macro_rules! name_serde {
    ($($name:ident),*) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                $name::new(text).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
name_serde!(RepoName, BranchName);

#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::{
        PartialSchema, ToSchema,
        openapi::{ObjectBuilder, RefOr, Type, schema::Schema},
    };

    /// Repo and branch names cross as their text.
    macro_rules! name_schema {
    ($($name:ident: $what:literal),*) => {$(
        impl PartialSchema for super::$name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().schema_type(Type::String).description(Some($what)).into()
            }
        }

        impl ToSchema for super::$name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}
    name_schema!(RepoName: "A repo's name", BranchName: "A branch's name");
}
