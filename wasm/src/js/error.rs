//! Every error that reaches JavaScript, made here and nowhere else.
//!
//! Each is a JS `Error` named `SnapgitError` with a stable `code` (one per cause, listed
//! in [`Code`]), a human message, and `value`: the offending value where the cause names
//! one (a path, a name, an id, a limit). Some carry more, named after the core field
//! (`expected` and `actual` for a moved head; `path`, `ours` and `theirs` for a conflict).

use bstr::{BStr, ByteSlice};
use js_sys::{Error as JsError, Object, Reflect};
use snapgit_core::{
    ObjectId, commit, diff::tree as diff, gc, history, id, merge::Conflict, object, path, policy, read, repo, restore,
    step::Misuse, store::NameError,
};
use wasm_bindgen::JsValue;

/// The cause of an error: the stable `code` string JavaScript sees.
pub use snapgit_core::error::Code;

/// A JS error under construction.
pub struct Thrown(Object);

impl Thrown {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: &str) -> Self {
        let error = JsError::new(message);
        error.set_name("SnapgitError");
        let thrown = Thrown(error.into());
        thrown.with("code", code.as_str())
    }

    /// Set a field.
    pub fn with(self, field: &str, value: impl Into<JsValue>) -> Self {
        // Setting a property on a fresh plain error cannot fail.
        let _ = Reflect::set(&self.0, &field.into(), &value.into());
        self
    }

    /// Set `value`, the offending value.
    pub fn value(self, value: impl Into<JsValue>) -> Self {
        self.with("value", value)
    }
}

impl From<Thrown> for JsValue {
    fn from(thrown: Thrown) -> Self {
        thrown.0.into()
    }
}

/// An argument of the wrong type or shape: `field` must be `expected`.
pub fn argument(field: &dyn std::fmt::Display, expected: &str, given: &JsValue) -> JsValue {
    let field = field.to_string();
    Thrown::new(
        Code::InvalidInput,
        &format!("invalid argument: {field} must be {expected}"),
    )
    .value(given.clone())
    .with("field", field)
    .into()
}

/// A storage adapter answered with a value of the wrong shape.
pub fn bad_answer(what: &str, given: &JsValue) -> JsValue {
    Thrown::new(Code::Storage, &format!("storage adapter answered badly: {what}"))
        .value(given.clone())
        .into()
}

/// A ref in storage whose value is not an object id.
pub fn bad_ref(key: &str, err: &id::Error) -> JsValue {
    Thrown::new(Code::Corrupt, &format!("ref {key:?} is corrupt: {err}"))
        .value(err.value.as_str())
        .with("key", key)
        .into()
}

/// An operation driven out of order.
pub fn misuse(what: &'static str) -> JsValue {
    to_js(&Misuse(what))
}

fn hex(id: &ObjectId) -> JsValue {
    id.to_string().into()
}

fn text(path: &BStr) -> JsValue {
    path.to_str_lossy().as_ref().into()
}

fn side(entry: &Option<(ObjectId, snapgit_core::Mode)>) -> JsValue {
    entry.map_or(JsValue::NULL, |(id, _)| hex(&id))
}

/// The JS error for any core error.
pub fn to_js<E: ToJs + ?Sized>(err: &E) -> JsValue {
    err.to_js().into()
}

/// A core error that maps to a JS error.
pub trait ToJs {
    /// The JS error.
    fn to_js(&self) -> Thrown;
}

fn thrown(code: Code, err: &impl std::fmt::Display) -> Thrown {
    Thrown::new(code, &err.to_string())
}

impl ToJs for Misuse {
    fn to_js(&self) -> Thrown {
        thrown(Code::Misuse, self)
    }
}

impl ToJs for id::Error {
    fn to_js(&self) -> Thrown {
        thrown(Code::InvalidInput, self).value(self.value.as_str())
    }
}

impl ToJs for path::Error {
    fn to_js(&self) -> Thrown {
        thrown(Code::InvalidInput, self).value(text(self.path.as_bstr()))
    }
}

impl ToJs for NameError {
    fn to_js(&self) -> Thrown {
        thrown(Code::InvalidInput, self).value(self.name.as_str())
    }
}

impl ToJs for policy::PatternError {
    fn to_js(&self) -> Thrown {
        thrown(Code::InvalidInput, self).value(self.pattern.as_str())
    }
}

impl ToJs for policy::Violation {
    fn to_js(&self) -> Thrown {
        let out = thrown(Code::Policy, self);
        match self {
            policy::Violation::Excluded { path, pattern } => out.value(text(path.as_bstr())).with("pattern", pattern),
            policy::Violation::FileTooLarge { path, limit, .. } => {
                out.value(text(path.as_bstr())).with("limit", *limit as f64)
            }
            policy::Violation::TooManyObjects { count, limit } => out.value(*count as f64).with("limit", *limit as f64),
            _ => out,
        }
    }
}

impl ToJs for object::Error {
    fn to_js(&self) -> Thrown {
        match self {
            object::Error::NotFound { id } => thrown(Code::NotFound, self).value(hex(id)),
            object::Error::Corrupt { id, .. }
            | object::Error::HashMismatch { id, .. }
            | object::Error::WrongKind { id, .. } => thrown(Code::Corrupt, self).value(hex(id)),
            object::Error::TooLarge { id, limit } => {
                thrown(Code::Limit, self).value(hex(id)).with("limit", *limit as f64)
            }
            _ => thrown(Code::Corrupt, self),
        }
    }
}

fn conflict(err: &impl std::fmt::Display, conflict: &Conflict) -> Thrown {
    thrown(Code::Conflict, err)
        .value(text(conflict.path.as_bstr()))
        .with("ours", side(&conflict.ours))
        .with("theirs", side(&conflict.theirs))
}

/// Storage failures never come back through core: the JS driver raises them itself,
/// keeping the adapter's error. This covers a driver that passes one through anyway.
fn storage(err: &impl std::fmt::Display) -> Thrown {
    thrown(Code::Storage, err)
}

impl ToJs for commit::Error {
    fn to_js(&self) -> Thrown {
        use commit::Error as E;
        match self {
            E::InvalidPath(e) => e.to_js(),
            E::InvalidMode { path, .. }
            | E::DuplicatePath { path }
            | E::OverlappingPaths { path, .. }
            | E::Collision { path, .. } => thrown(Code::InvalidInput, self).value(text(path.as_bstr())),
            E::InvalidSignature { value, .. } => thrown(Code::InvalidInput, self).value(value.as_str()),
            E::InvalidMessage => thrown(Code::InvalidInput, self),
            E::EmptyCommit => thrown(Code::EmptyCommit, self),
            E::PathNotFound { path } => thrown(Code::NotFound, self).value(text(path.as_bstr())),
            E::PathConflict { path, at, .. } => thrown(Code::Conflict, self)
                .value(text(path.as_bstr()))
                .with("at", text(at.as_bstr())),
            E::FileTooLarge { path, limit, .. } => thrown(Code::Limit, self)
                .value(text(path.as_bstr()))
                .with("limit", *limit as f64),
            E::TooManyChanges { count, limit } => thrown(Code::Limit, self)
                .value(*count as f64)
                .with("limit", *limit as f64),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for repo::Error {
    fn to_js(&self) -> Thrown {
        use repo::Error as E;
        match self {
            E::InvalidName(e) => e.to_js(),
            E::RepoExists { repo } => thrown(Code::AlreadyExists, self).value(repo.as_str()),
            E::RepoNotFound { repo } => thrown(Code::NotFound, self).value(repo.as_str()),
            E::BranchExists { repo, branch } => thrown(Code::AlreadyExists, self)
                .value(branch.as_str())
                .with("repo", repo.as_str()),
            E::BranchNotFound { repo, branch } => thrown(Code::NotFound, self)
                .value(branch.as_str())
                .with("repo", repo.as_str()),
            E::Policy(e) => e.to_js(),
            E::HeadMoved { expected, actual } => thrown(Code::HeadMoved, self)
                .value(hex(expected))
                .with("expected", hex(expected))
                .with("actual", actual.as_ref().map_or(JsValue::NULL, hex)),
            E::Conflict(c) => conflict(self, c),
            E::LostRace { attempts } => thrown(Code::LostRace, self).value(*attempts),
            E::Build(e) => e.to_js(),
            E::Restore(e) => e.to_js(),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for read::Error {
    fn to_js(&self) -> Thrown {
        use read::Error as E;
        match self {
            E::InvalidPath(e) => e.to_js(),
            E::PathNotFound { path, commit } => thrown(Code::NotFound, self)
                .value(text(path.as_bstr()))
                .with("commit", hex(commit)),
            E::NotAFile { path, .. } | E::NotAFolder { path } => {
                thrown(Code::InvalidInput, self).value(text(path.as_bstr()))
            }
            E::UnknownCommit { id } => thrown(Code::NotFound, self).value(hex(id)),
            E::NotACommit { id, .. } => thrown(Code::InvalidInput, self).value(hex(id)),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for history::Error {
    fn to_js(&self) -> Thrown {
        use history::Error as E;
        match self {
            E::InvalidPath(e) => e.to_js(),
            E::InvalidLimit { limit } => thrown(Code::InvalidInput, self).value(*limit as f64),
            E::InvalidCursor { cursor, .. } | E::ForeignCursor { cursor } => {
                thrown(Code::InvalidInput, self).value(cursor.as_str())
            }
            E::UnknownCommit { id } => thrown(Code::NotFound, self).value(hex(id)),
            E::NotACommit { id, .. } => thrown(Code::InvalidInput, self).value(hex(id)),
            E::NotAFile { path, commit } => thrown(Code::InvalidInput, self)
                .value(text(path.as_bstr()))
                .with("commit", hex(commit)),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for diff::Error {
    fn to_js(&self) -> Thrown {
        use diff::Error as E;
        match self {
            E::InvalidPath(e) => e.to_js(),
            E::UnknownCommit { id } => thrown(Code::NotFound, self).value(hex(id)),
            E::NotACommit { id, .. } => thrown(Code::InvalidInput, self).value(hex(id)),
            E::PathNotFound { path } => thrown(Code::NotFound, self).value(text(path.as_bstr())),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for restore::Error {
    fn to_js(&self) -> Thrown {
        use restore::Error as E;
        match self {
            E::InvalidPath(e) => e.to_js(),
            E::InvalidSignature { value, .. } => thrown(Code::InvalidInput, self).value(value.as_str()),
            E::InvalidMessage | E::Collision(_) => thrown(Code::InvalidInput, self),
            E::UnknownCommit { id } => thrown(Code::NotFound, self).value(hex(id)),
            E::NotACommit { id, .. } => thrown(Code::InvalidInput, self).value(hex(id)),
            E::PathNotFound { path } => thrown(Code::NotFound, self).value(text(path.as_bstr())),
            E::PathConflict { path, at } => thrown(Code::Conflict, self)
                .value(text(path.as_bstr()))
                .with("at", text(at.as_bstr())),
            E::NothingToRestore => thrown(Code::EmptyCommit, self),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for gc::PruneError {
    fn to_js(&self) -> Thrown {
        use gc::PruneError as E;
        match self {
            E::InvalidName(e) => e.to_js(),
            E::ZeroKeepCount => thrown(Code::InvalidInput, self).value(0),
            E::NoRule => thrown(Code::InvalidInput, self),
            E::InvalidOption { option, value, .. } => thrown(Code::InvalidInput, self)
                .value(value.as_str())
                .with("field", *option),
            E::BranchNotFound { repo, branch } => thrown(Code::NotFound, self)
                .value(branch.as_str())
                .with("repo", repo.as_str()),
            E::Contention { attempts, .. } => thrown(Code::LostRace, self).value(*attempts),
            E::Unrewritable { commit, .. } => thrown(Code::Corrupt, self).value(hex(commit)),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::InvalidInput, self),
        }
    }
}

impl ToJs for gc::FootprintError {
    fn to_js(&self) -> Thrown {
        use gc::FootprintError as E;
        match self {
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::Corrupt, self),
        }
    }
}

impl ToJs for gc::CollectError {
    fn to_js(&self) -> Thrown {
        use gc::CollectError as E;
        match self {
            E::InvalidOption { option, value, .. } => thrown(Code::InvalidInput, self)
                .value(value.as_str())
                .with("field", *option),
            E::Object(e) => e.to_js(),
            E::Storage(e) => storage(e),
            E::Misuse(e) => e.to_js(),
            _ => thrown(Code::Corrupt, self),
        }
    }
}
