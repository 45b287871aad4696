//! The sans-IO contract shared by every operation.
//!
//! An operation never performs IO. The driver calls [`Operation::poll`] until it returns
//! [`Step::Done`], and answers every [`Step::Get`] with [`Operation::provide`], passing one
//! answer per id in the order asked (`None` where storage has no such object).

use std::sync::Arc;

use gix_hash::ObjectId;
use gix_object::Kind;

pub use crate::store::{Listed, RefState};
use crate::{
    cache::ObjectCache,
    id::{IdMap, IdSet},
    object::{self, Object},
};

/// What an operation needs next.
///
/// Answer each step with the matching call: `Get` with [`Operation::provide`], every
/// other step with [`Operation::answer`] and the [`Answer`] variant named on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an operation makes progress only when its step is carried out"]
#[non_exhaustive]
pub enum Step<T> {
    /// Read these objects from storage (at the keys [`object::loose_key`] gives) and pass
    /// their stored bytes to `provide`, in this order, `None` for an object that is absent.
    /// A driver may pass an object inflated (`<kind> <size>\0<content>`) instead: core
    /// checks either form against the id.
    /// A batch holds every object that can be known to be needed at this point, so fetch
    /// them in parallel.
    Get(Vec<ObjectId>),
    /// Read the stored bytes at these keys, as they are (files of the repository that are
    /// not loose objects: `HEAD`, `packed-refs`, reflogs under `logs/`, loose refs), in
    /// parallel; answer [`Answer::Read`] with one entry per key, in this order, `None`
    /// where the key is absent. Storage's `get_many` serves it unchanged.
    Read(Vec<String>),
    /// Read these byte ranges (of packs, and other large files read in part), in
    /// parallel; answer [`Answer::Ranges`] with the bytes of each range in this order,
    /// `None` where the key is absent. A range that reaches past the end of its key gives
    /// the bytes up to the end. Neighbouring ranges of one key arrive merged already.
    ReadRanges(Vec<Range>),
    /// Store these objects at their keys if absent (an existing object is left as it is),
    /// in parallel; then answer [`Answer::Put`]. Objects always come before the ref update
    /// that makes them reachable.
    Put(Vec<object::NewObject>),
    /// Store these files at their keys if absent (an existing key is left as it is), in
    /// parallel, as `Put` stores objects; then answer [`Answer::Put`]. Packs and their
    /// indexes, named by their checksum, and other files of the repository that are not
    /// loose objects.
    Write(Vec<Stored>),
    /// Replace one of the repository's small files that git rewrites whole under a lock
    /// ([`SWAPPABLE`]: `shallow`, `config`) only if it still holds exactly
    /// `expected` (`None`: only if it does not exist); answer [`Answer::Swapped`].
    /// Folders take git's own `<key>.lock`, so a `git` process working on the same
    /// repository is safe alongside; object stores make a conditional write.
    Swap(Swap),
    /// Read the ref at this key; answer [`Answer::Ref`] with its value and version, or
    /// `None` if it does not exist.
    ReadRef(String),
    /// Compare-and-swap a ref; answer [`Answer::Cas`]. This is the only write that can
    /// lose a race, and the only one that makes anything visible.
    CasRef(CasRef),
    /// List every key under this prefix; answer [`Answer::List`].
    List(String),
    /// Delete these keys (absent ones are fine); answer [`Answer::Deleted`].
    Delete(Vec<String>),
    /// Try to take an advisory lock; answer [`Answer::Lock`] with a token, or `None` if
    /// someone else holds it. Locks only reduce contention: the CAS stays the fence.
    Lock(LockRequest),
    /// Send this HTTP request to a git remote (a push or fetch, [`crate::remote::client`])
    /// and answer [`Answer::Http`] with the response, whatever its status; a response
    /// body over the request's `max_response_bytes` is a driver error. Only operations
    /// that talk to a remote ask for it.
    Http(HttpRequest),
    /// Release a lock taken earlier, only if `token` still holds it; answer
    /// [`Answer::Unlocked`].
    Unlock {
        /// The lock's name.
        name: String,
        /// The token [`Answer::Lock`] returned.
        token: String,
    },
    /// Wait this long, then answer [`Answer::Waited`]. Asked after contention (a lost
    /// compare-and-swap, a busy lock) so the next try does not follow at once; how long
    /// is core's decision ([`crate::retry`]), the driver only sleeps (or, in a
    /// simulation, moves its clock). A driver that is cancelled stops here as at any step.
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// The operation finished with this result; polling again is a misuse.
    Done(T),
}

impl<T> Step<T> {
    /// The same step, with `f` applied to the result of a `Done`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Get(ids) => Step::Get(ids),
            Step::Read(keys) => Step::Read(keys),
            Step::ReadRanges(ranges) => Step::ReadRanges(ranges),
            Step::Put(objects) => Step::Put(objects),
            Step::Write(files) => Step::Write(files),
            Step::Swap(swap) => Step::Swap(swap),
            Step::ReadRef(key) => Step::ReadRef(key),
            Step::CasRef(cas) => Step::CasRef(cas),
            Step::List(prefix) => Step::List(prefix),
            Step::Delete(keys) => Step::Delete(keys),
            Step::Lock(lock) => Step::Lock(lock),
            Step::Http(request) => Step::Http(request),
            Step::Unlock { name, token } => Step::Unlock { name, token },
            Step::Wait { ms } => Step::Wait { ms },
            Step::Done(out) => Step::Done(f(out)),
        }
    }
}

/// A file to store at a key: the bytes of a [`Step::Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The key.
    pub key: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The files a [`Step::Swap`] may replace: the ones git itself rewrites whole under
/// `<file>.lock`. Drivers refuse a swap of any other key.
pub const SWAPPABLE: [&str; 2] = ["shallow", "config"];

/// A [`Step::Swap`]: replace a file only if it still holds what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// The key, one of [`SWAPPABLE`].
    pub key: String,
    /// The bytes it must still hold; `None`: it must not exist.
    pub expected: Option<Vec<u8>>,
    /// What it holds afterwards; `None` deletes it.
    pub new: Option<Vec<u8>>,
}

impl Swap {
    /// Whether a driver may carry it out: its key is one of [`SWAPPABLE`].
    pub fn allowed(&self) -> bool {
        SWAPPABLE.contains(&self.key.as_str())
    }
}

/// An HTTP request of a [`Step::Http`]. Redirects may be followed; the driver adds
/// nothing but what HTTP itself needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// The URL, `http://` or `https://`, without credentials (they are in `headers`).
    pub url: String,
    /// Headers to send: `Git-Protocol`, `Content-Type`, `Accept`, `Authorization`...
    pub headers: Vec<(String, String)>,
    /// The body (empty for a `GET`).
    pub body: Vec<u8>,
    /// The largest response body the operation accepts.
    pub max_response_bytes: u64,
}

/// The method of an [`HttpRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl HttpMethod {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// The response to an [`HttpRequest`]: its status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A byte range of a stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The key.
    pub key: String,
    /// The first byte.
    pub start: u64,
    /// How many bytes.
    pub len: u64,
}

/// A compare-and-swap of one ref, as `git update-ref <ref> <new> <old>` does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasRef {
    /// The ref's storage key, e.g. `refs/namespaces/agent-1/refs/heads/main`.
    pub key: String,
    /// The state the ref must still be in; `None` means it must not exist.
    pub expected: Option<RefState>,
    /// The new value; `None` deletes the ref.
    pub new: Option<ObjectId>,
}

impl CasRef {
    /// The bytes to store for the new value: git's loose ref format, `<hex>\n`.
    pub fn new_bytes(&self) -> Option<Vec<u8>> {
        self.new.map(|id| format!("{id}\n").into_bytes())
    }
}

/// How a compare-and-swap went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The ref now holds the new value (or is deleted), at this version.
    Won {
        /// The new version; empty after a delete.
        version: String,
    },
    /// Someone else moved the ref first; here is what it holds now.
    Lost {
        /// The current state, `None` if the ref does not exist.
        current: Option<RefState>,
    },
}

/// An advisory lock to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// The lock's name (derived by core from validated names).
    pub name: String,
    /// How long the lock lives unless released, in milliseconds.
    pub ttl_ms: u64,
}

/// The answer to a step other than `Get`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Every object of a `Put`, or every file of a `Write`, is stored.
    Put,
    /// The stored bytes of each key of a `Read`, in the order asked, `None` where absent.
    Read(Vec<Option<Vec<u8>>>),
    /// The bytes of each range of a `ReadRanges`, in the order asked, `None` where the
    /// key is absent.
    Ranges(Vec<Option<Vec<u8>>>),
    /// The state of the ref read.
    Ref(Option<RefState>),
    /// The outcome of a `CasRef`.
    Cas(CasOutcome),
    /// The outcome of a `Swap`: `true` if the file now holds the new bytes, `false` if
    /// it no longer held the expected ones (nothing was written; read it again).
    Swapped(bool),
    /// The keys of a `List`.
    List(Vec<Listed>),
    /// The keys of a `Delete` are gone.
    Deleted,
    /// The lock's token, or `None` if it is held by someone else.
    Lock(Option<String>),
    /// The lock was released (or had already expired).
    Unlocked,
    /// The response to a `Http` step.
    Http(HttpResponse),
    /// The time of a `Wait` has passed.
    Waited,
}

/// The driver broke the protocol: polled after `Done`, or answered what was not asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation misused: {0}")]
pub struct Misuse(pub &'static str);

/// The error of a storage adapter, kept as it was raised.
pub type StorageError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A resumable operation: the one state-machine API every driver runs.
///
/// Call [`poll`](Operation::poll) until it returns [`Step::Done`]; answer every
/// [`Step::Get`] with [`provide`](Operation::provide) before polling again.
pub trait Operation {
    /// What the operation produces.
    type Output;
    /// Why it can fail. Drivers wrap their storage failures in it.
    type Error: From<StorageError> + From<Misuse>;

    /// Advance as far as the objects at hand allow, and say what is needed next.
    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Self::Output>, Self::Error>;

    /// Answer the last [`Step::Get`]: stored bytes per id, in the order asked.
    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Self::Error>;

    /// Answer the last step that was not a `Get`. Operations that only read objects
    /// never ask for one, and refuse every answer.
    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Self::Error> {
        let _ = (cache, answer);
        Err(Misuse("this operation asked for no such step").into())
    }

    /// `true` for an operation that reads contents (files, diffs, packs to send): objects
    /// a partial fetch left out are then fetched from the store's promisor remote when it
    /// asks for them ([`Packed`](crate::pack::Packed)). History walks never do, so that a
    /// shallow store's missing commits stay missing.
    fn fetches_promised(&self) -> bool {
        false
    }

    /// `true` for an operation that walks history and reads the store's commit-graph when
    /// it has one ([`Packed`](crate::pack::Packed) reads it with the pack indexes, and
    /// the cache keeps it).
    fn wants_graph(&self) -> bool {
        false
    }
}

/// An operation borrowed: drivers and wrappers such as
/// [`Packed`](crate::pack::Packed) run it without taking it.
impl<O: Operation + ?Sized> Operation for &mut O {
    type Output = O::Output;
    type Error = O::Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Self::Output>, Self::Error> {
        (**self).poll(cache)
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Self::Error> {
        (**self).provide(cache, objects)
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Self::Error> {
        (**self).answer(cache, answer)
    }

    fn wants_graph(&self) -> bool {
        (**self).wants_graph()
    }

    fn fetches_promised(&self) -> bool {
        (**self).fetches_promised()
    }
}

/// The objects one operation holds and the ones it still needs.
///
/// Objects it has looked at are kept here for the operation's whole life, so a cache
/// that evicts can never make an operation ask for the same object twice.
#[derive(Debug, Default)]
pub(crate) struct Fetch {
    held: IdMap<Object>,
    want: Vec<ObjectId>,
    wanted: IdSet,
    asked: Vec<ObjectId>,
    rounds: u32,
}

/// The most annotated tags followed from one id to the commit it names.
pub const MAX_TAG_DEPTH: usize = 32;

impl Fetch {
    /// The object `id` if held or cached; otherwise remember to ask for it.
    pub fn get(&mut self, cache: &ObjectCache, id: &ObjectId) -> Option<Object> {
        if let Some(object) = self.held.get(id) {
            return Some(object.clone());
        }
        if let Some(object) = cache.get(id) {
            self.held.insert(*id, object.clone());
            return Some(object.clone());
        }
        if self.wanted.insert(*id) {
            self.want.push(*id);
        }
        None
    }

    /// The tree `id`, `None` if it must be fetched first.
    pub fn tree(&mut self, cache: &ObjectCache, id: &ObjectId) -> Result<Option<Arc<gix_object::Tree>>, object::Error> {
        match self.get(cache, id) {
            None => Ok(None),
            Some(Object::Tree(tree)) => Ok(Some(tree)),
            Some(other) => Err(wrong_kind(id, Kind::Tree, &other)),
        }
    }

    /// The blob `id`, `None` if it must be fetched first.
    pub fn blob(&mut self, cache: &ObjectCache, id: &ObjectId) -> Result<Option<Arc<[u8]>>, object::Error> {
        match self.get(cache, id) {
            None => Ok(None),
            Some(Object::Blob(data)) => Ok(Some(data)),
            Some(other) => Err(wrong_kind(id, Kind::Blob, &other)),
        }
    }

    /// The commit `id`, `None` if it must be fetched first.
    pub fn commit(
        &mut self,
        cache: &ObjectCache,
        id: &ObjectId,
    ) -> Result<Option<Arc<gix_object::Commit>>, object::Error> {
        match self.get(cache, id) {
            None => Ok(None),
            Some(Object::Commit(commit)) => Ok(Some(commit)),
            Some(other) => Err(wrong_kind(id, Kind::Commit, &other)),
        }
    }

    /// The commit `id` names where a commit is meant, with its id: the commit itself, or
    /// the commit an annotated tag (or a tag of a tag) points at, as git peels
    /// `v1.0^{commit}`. `None` if an object must be fetched first. A tag that leads to
    /// anything but a commit is the wrong kind, named by `id`.
    pub fn peeled_commit(
        &mut self,
        cache: &ObjectCache,
        id: &ObjectId,
    ) -> Result<Option<(ObjectId, Arc<gix_object::Commit>)>, object::Error> {
        let mut at = *id;
        for _ in 0..=MAX_TAG_DEPTH {
            match self.get(cache, &at) {
                None => return Ok(None),
                Some(Object::Commit(commit)) => return Ok(Some((at, commit))),
                Some(Object::Tag(tag)) => at = tag.target,
                Some(other) => return Err(wrong_kind(id, Kind::Commit, &other)),
            }
        }
        Err(object::Error::Corrupt {
            id: *id,
            reason: format!("tags nested deeper than {MAX_TAG_DEPTH}"),
        })
    }

    /// Hold an object the operation was given rather than read (a folder's trees and
    /// files, built in memory): it is never asked for.
    pub fn hold(&mut self, id: ObjectId, object: Object) {
        self.held.insert(id, object);
    }

    /// The tree `id` if this operation holds it.
    pub fn held_tree(&self, id: &ObjectId) -> Option<Arc<gix_object::Tree>> {
        match self.held.get(id) {
            Some(Object::Tree(tree)) => Some(tree.clone()),
            _ => None,
        }
    }

    /// The blob `id` if this operation holds it.
    pub fn held_blob(&self, id: &ObjectId) -> Option<Arc<[u8]>> {
        match self.held.get(id) {
            Some(Object::Blob(data)) => Some(data.clone()),
            _ => None,
        }
    }

    /// Every object held so far.
    pub fn held_objects(&self) -> impl Iterator<Item = (&ObjectId, &Object)> {
        self.held.iter()
    }

    /// Forget the wishes of an unfinished pass.
    pub fn reset_want(&mut self) {
        self.want.clear();
        self.wanted.clear();
    }

    /// `true` if the last pass found everything it looked for.
    pub fn complete(&self) -> bool {
        self.want.is_empty()
    }

    /// Turn the wishes of this pass into a `Get`, or `None` if there are none.
    pub fn take_get<T>(&mut self) -> Option<Step<T>> {
        if self.want.is_empty() {
            return None;
        }
        self.wanted.clear();
        self.asked = std::mem::take(&mut self.want);
        self.rounds += 1;
        Some(Step::Get(self.asked.clone()))
    }

    /// The number of `Get` rounds asked so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The ids the answers to the last `Get` leave out.
    pub fn absent_in(&self, answers: &[Option<Vec<u8>>]) -> Vec<ObjectId> {
        self.asked
            .iter()
            .zip(answers)
            .filter(|(_, answer)| answer.is_none())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Keep the answers to the last `Get` that are there, each verified; the absent ones
    /// are not held, so the operation asks for them again if it still needs them.
    pub fn provide_present<E: From<object::Error> + From<Misuse>>(
        &mut self,
        cache: &mut ObjectCache,
        answers: Vec<Option<Vec<u8>>>,
    ) -> Result<(), E> {
        let asked = std::mem::take(&mut self.asked);
        let (ids, answers): (Vec<ObjectId>, Vec<Option<Vec<u8>>>) = asked
            .into_iter()
            .zip(answers)
            .filter(|(_, answer)| answer.is_some())
            .unzip();
        if ids.is_empty() {
            return Ok(());
        }
        self.asked = ids;
        self.provide(cache, answers)
    }

    /// Verify and keep the answers to the last `Get`.
    pub fn provide<E: From<object::Error> + From<Misuse>>(
        &mut self,
        cache: &mut ObjectCache,
        answers: Vec<Option<Vec<u8>>>,
    ) -> Result<(), E> {
        self.keep_answers(cache, answers).map_err(Refused::into_error)
    }

    /// [`Fetch::provide`] for every error type at once: one copy in the `.wasm`.
    #[inline(never)]
    fn keep_answers(&mut self, cache: &mut ObjectCache, answers: Vec<Option<Vec<u8>>>) -> Result<(), Refused> {
        let asked = std::mem::take(&mut self.asked);
        for (id, object) in decode_all(cache, &asked, answers)? {
            cache.insert(id, object.clone());
            self.held.insert(id, object);
        }
        Ok(())
    }
}

/// Why answers were refused, before it becomes an operation's own error type.
enum Refused {
    Object(object::Error),
    Misuse(Misuse),
}

impl Refused {
    fn into_error<E: From<object::Error> + From<Misuse>>(self) -> E {
        match self {
            Refused::Object(err) => err.into(),
            Refused::Misuse(misuse) => misuse.into(),
        }
    }
}

#[inline(never)]
fn decode_all(
    cache: &ObjectCache,
    asked: &[ObjectId],
    answers: Vec<Option<Vec<u8>>>,
) -> Result<Vec<(ObjectId, Object)>, Refused> {
    if asked.is_empty() {
        return Err(Refused::Misuse(Misuse("provide called without an outstanding Get")));
    }
    if answers.len() != asked.len() {
        return Err(Refused::Misuse(Misuse(
            "provide must answer every id of the Get, in order",
        )));
    }
    let max = cache.limits().max_object_bytes;
    asked
        .iter()
        .zip(answers)
        .map(|(id, answer)| {
            let stored = answer.ok_or(object::Error::NotFound { id: *id })?;
            object::decode_loose(id, &stored, max).map(|object| (*id, object))
        })
        .collect::<Result<_, _>>()
        .map_err(Refused::Object)
}

fn wrong_kind(id: &ObjectId, expected: Kind, actual: &Object) -> object::Error {
    object::Error::WrongKind {
        id: *id,
        expected,
        actual: actual.kind(),
    }
}
