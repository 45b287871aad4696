//! Revisions: how a user names a commit — `main`, `main~2`, `main^`, `v1^2`, a full or
//! abbreviated id. [`Resolve`] turns one into a commit id; it is the one place every
//! face (the npm package, the `snapgit` command, the component) resolves them.
//!
//! A revision is a base, then any number of steps back, as in git: `~N` is the N-th
//! first-parent ancestor (`~` alone is `~1`), `^N` the N-th parent (`^` alone is `^1`,
//! `^0` the commit itself). The base is, in this order:
//!
//! 1. a full id;
//! 2. a branch of the repo;
//! 3. a tag of the repo (`refs/namespaces/<repo>/refs/tags/<name>`);
//! 4. an abbreviated id of at least 4 hex digits that names exactly one object, loose or
//!    packed (two or more is [`Error::Ambiguous`], naming them).
//!
//! git tries tags before branches; snapgit tries the repo's branches first, which is what
//! an agent's repo holds, so reading a branch costs one request. A name that is a branch
//! or tag is never taken for an abbreviated id, as in git. An annotated tag, wherever it
//! is met, stands for the commit it names.
//!
//! ```
//! use snapgit_core::{HashKind, ObjectCache, commit::Change, drive::{self, MemoryStore}, repo::{RepoOp, AdminOutput}, rev};
//!
//! let store = MemoryStore::new();
//! let mut cache = ObjectCache::new(HashKind::Sha1);
//! let me = snapgit_core::commit::Signature::new("Agent", "agent@example.com", 1_700_000_000);
//! let mut op = RepoOp::create_repo(&cache, "agent", "main", vec![Change::put("a.md", "a\n")], me, "first")?;
//! let AdminOutput::Created { commit, .. } = drive::run(&mut op, &mut cache, &store)? else { unreachable!() };
//! let mut op = rev::Resolve::new(&cache, "agent", "main")?;
//! assert_eq!(drive::run(&mut op, &mut cache, &store)?, commit);
//! let mut op = rev::Resolve::new(&cache, "agent", &commit.to_string()[..7])?;
//! assert_eq!(drive::run(&mut op, &mut cache, &store)?, commit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use gix_hash::ObjectId;

use crate::{
    cache::ObjectCache,
    id, object,
    pack::{self, PackFile},
    step::{Answer, Fetch, Misuse, Operation, RefState, Step, StorageError},
    store::{self, BranchName, NameError, RepoName},
};

/// The shortest abbreviated id taken, as git's `core.abbrev` minimum.
pub const MIN_ABBREV: usize = 4;

/// Why a revision cannot be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The repo name is not acceptable.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The text is not a revision.
    #[error("invalid revision {text:?}: {reason}")]
    Invalid {
        /// The revision.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No branch, tag or object of the repo has this name.
    #[error("unknown revision {text:?} in repo {repo:?}: no branch, tag or commit has that name")]
    Unknown {
        /// The revision.
        text: String,
        /// The repo.
        repo: String,
    },
    /// The repo has no branch at all: it does not exist.
    #[error("repo {repo:?} does not exist")]
    UnknownRepo {
        /// The repo.
        repo: String,
    },
    /// An abbreviated id that names more than one object.
    #[error("abbreviated id {prefix:?} is ambiguous: it names {} objects", candidates.len())]
    Ambiguous {
        /// The abbreviated id.
        prefix: String,
        /// The objects it names.
        candidates: Vec<ObjectId>,
    },
    /// A step back past a commit that has no such parent.
    #[error("revision {text:?}: commit {commit} has no parent {parent}")]
    NoParent {
        /// The revision.
        text: String,
        /// The commit.
        commit: ObjectId,
        /// Which parent was asked for (1 is the first).
        parent: u32,
    },
    /// The base names an object that is not a commit (nor a tag of one).
    #[error("revision {text:?} names {id}, a {kind}, not a commit")]
    NotACommit {
        /// The revision.
        text: String,
        /// The object.
        id: ObjectId,
        /// What it is.
        kind: gix_object::Kind,
    },
    /// An object is missing, corrupt or of the wrong kind.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// A pack or pack index that cannot be used.
    #[error(transparent)]
    Pack(#[from] pack::Error),
    /// The storage adapter failed.
    #[error("storage failed: {0}")]
    Storage(#[source] StorageError),
    /// The driver broke the protocol.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        Error::Storage(err)
    }
}

/// What a base may be, before storage says which.
#[derive(Debug)]
struct Base {
    /// A full id.
    id: Option<ObjectId>,
    /// A valid branch or tag name.
    name: Option<BranchName>,
    /// Lowercase hex of at least [`MIN_ABBREV`] digits, shorter than a full id.
    prefix: Option<String>,
}

/// The next thing to ask storage for, while the base is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Branch,
    Tag,
    Loose,
    Packs,
    Indexes,
    /// Whether the repo has any branch, to say which is missing: the repo, or the name.
    Repo,
}

/// Resolve a revision of a repo to a commit id. Create it with [`Resolve::new`], then
/// call [`poll`](Operation::poll) until it returns [`Step::Done`], answering
/// [`Step::Get`] with [`provide`](Operation::provide) and every other step with
/// [`answer`](Operation::answer).
#[derive(Debug)]
pub struct Resolve {
    repo: RepoName,
    text: String,
    base: Base,
    /// Steps back: (which parent, how many times).
    back: Vec<(u32, u32)>,
    /// What has been asked, and is being waited for.
    asked: Vec<Ask>,
    wait: Option<Ask>,
    /// Objects whose id starts with the prefix.
    candidates: Vec<ObjectId>,
    /// Index keys being read, with their packs.
    reading: Vec<(String, String, u64)>,
    /// The repo has a branch (known once asked, when nothing had the name).
    repo_exists: Option<bool>,
    /// Where the walk stands: the base once known, then each ancestor.
    at: Option<ObjectId>,
    fetch: Fetch,
    waiting_get: bool,
    done: bool,
}

impl Resolve {
    /// Parse `text` as a revision of `repo`; nothing is read yet.
    pub fn new(cache: &ObjectCache, repo: &str, text: &str) -> Result<Self, Error> {
        let repo = RepoName::new(repo)?;
        let invalid = |reason| Error::Invalid {
            text: text.chars().take(200).collect(),
            reason,
        };
        if text.len() > crate::limits::MAX_PATH_BYTES {
            return Err(invalid("it is longer than 4096 bytes"));
        }
        let split = text.find(['~', '^']).unwrap_or(text.len());
        let (base, mut rest) = text.split_at(split);
        if base.is_empty() {
            return Err(invalid("it names nothing before its first ~ or ^"));
        }
        let mut back = Vec::new();
        while let Some(op) = rest.chars().next() {
            rest = &rest[op.len_utf8()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (count, tail) = rest.split_at(digits);
            let count: u32 = match count {
                "" => 1,
                n => n.parse().map_err(|_| invalid("a count after ~ or ^ is too large"))?,
            };
            match op {
                '~' if count > 0 => back.push((1, count)),
                '~' => {}
                '^' if count > 0 => back.push((count, 1)),
                '^' => {}
                _ => return Err(invalid("expected ~N or ^N after the name")),
            }
            rest = tail;
        }
        let hex_len = cache.hash_kind().len_in_hex();
        let is_hex = base.len() >= MIN_ABBREV && base.bytes().all(|b| b.is_ascii_hexdigit());
        let base = if is_hex && base.len() == hex_len {
            Base {
                id: Some(id::parse(cache.hash_kind(), &base.to_ascii_lowercase()).map_err(|_| invalid("not an id"))?),
                name: None,
                prefix: None,
            }
        } else {
            Base {
                id: None,
                name: BranchName::new(base).ok(),
                prefix: (is_hex && base.len() < hex_len).then(|| base.to_ascii_lowercase()),
            }
        };
        if base.id.is_none() && base.name.is_none() && base.prefix.is_none() {
            return Err(invalid("it is neither a branch or tag name nor a commit id"));
        }
        Ok(Resolve {
            repo,
            text: text.to_owned(),
            at: base.id,
            base,
            back,
            asked: Vec::new(),
            wait: None,
            candidates: Vec::new(),
            reading: Vec::new(),
            repo_exists: None,
            fetch: Fetch::default(),
            waiting_get: false,
            done: false,
        })
    }

    fn key(&self, ask: Ask) -> Option<String> {
        let name = self.base.name.as_ref()?;
        Some(match ask {
            Ask::Branch => self.repo.branch_key(name),
            _ => format!("{}tags/{}", self.repo.refs_prefix(), name.as_str()),
        })
    }

    /// The next request that finds the base, or the base once found.
    fn find_base(&mut self, cache: &ObjectCache) -> Result<Result<ObjectId, Step<ObjectId>>, Error> {
        let ask = |this: &mut Self, ask: Ask, step: Step<ObjectId>| {
            this.asked.push(ask);
            this.wait = Some(ask);
            Ok(Err(step))
        };
        if self.base.name.is_some() {
            for which in [Ask::Branch, Ask::Tag] {
                if !self.asked.contains(&which) {
                    let key = self.key(which).expect("a name");
                    return ask(self, which, Step::ReadRef(key));
                }
            }
        }
        let Some(prefix) = self.base.prefix.clone() else {
            return self.not_found();
        };
        if !self.asked.contains(&Ask::Loose) {
            return ask(self, Ask::Loose, Step::List(format!("objects/{}/", &prefix[..2])));
        }
        let packs = match cache.packs() {
            Some(packs) => packs,
            None if !self.asked.contains(&Ask::Packs) => {
                return ask(self, Ask::Packs, Step::List(pack::PACK_DIR.to_owned()));
            }
            None if !self.reading.is_empty() && !self.asked.contains(&Ask::Indexes) => {
                let keys = self.reading.iter().map(|(idx, _, _)| idx.clone()).collect();
                return ask(self, Ask::Indexes, Step::Read(keys));
            }
            None => Default::default(),
        };
        for pack in packs.iter() {
            self.candidates.extend(pack.index.ids_with_prefix(&prefix));
        }
        crate::order::sort(&mut self.candidates);
        self.candidates.dedup();
        match self.candidates.as_slice() {
            [] => self.not_found(),
            [one] => Ok(Ok(*one)),
            _ => Err(Error::Ambiguous {
                prefix,
                candidates: std::mem::take(&mut self.candidates),
            }),
        }
    }

    /// Nothing has the name: ask whether the repo exists, then say which is missing.
    fn not_found(&mut self) -> Result<Result<ObjectId, Step<ObjectId>>, Error> {
        match self.repo_exists {
            None => {
                self.asked.push(Ask::Repo);
                self.wait = Some(Ask::Repo);
                Ok(Err(Step::List(self.repo.branches_prefix())))
            }
            Some(false) => Err(Error::UnknownRepo {
                repo: self.repo.to_string(),
            }),
            Some(true) => Err(self.unknown()),
        }
    }

    fn unknown(&self) -> Error {
        Error::Unknown {
            text: self.text.clone(),
            repo: self.repo.to_string(),
        }
    }

    /// Walk back from the base; `None` while a commit must be fetched.
    fn walk(&mut self, cache: &ObjectCache, mut at: ObjectId) -> Result<Option<ObjectId>, Error> {
        self.fetch.reset_want();
        // The base may be a tag: it stands for the commit it names.
        let Some((peeled, _)) = self
            .fetch
            .peeled_commit(cache, &at)
            .map_err(|err| self.named(at, err))?
        else {
            return Ok(None);
        };
        at = peeled;
        self.at = Some(at);
        while let Some((parent, times)) = self.back.first_mut() {
            let Some(commit) = self.fetch.commit(cache, &at)? else {
                return Ok(None);
            };
            let parent_number = *parent;
            let Some(&next) = commit.parents.get(parent_number as usize - 1) else {
                return Err(Error::NoParent {
                    text: self.text.clone(),
                    commit: at,
                    parent: parent_number,
                });
            };
            *times -= 1;
            if *times == 0 {
                self.back.remove(0);
            }
            at = next;
            self.at = Some(at);
        }
        // The last commit must be there and be a commit.
        Ok(self.fetch.commit(cache, &at)?.map(|_| at))
    }

    /// A base that is missing or not a commit, named as the caller named it.
    fn named(&self, at: ObjectId, err: object::Error) -> Error {
        match err {
            object::Error::NotFound { id } if id == at && self.base.id == Some(at) => self.unknown(),
            object::Error::WrongKind { id, actual, .. } if id == at => Error::NotACommit {
                text: self.text.clone(),
                id,
                kind: actual,
            },
            other => other.into(),
        }
    }
}

impl Operation for Resolve {
    type Output = ObjectId;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<ObjectId>, Error> {
        if self.done {
            return Err(Misuse("poll called after Done").into());
        }
        if self.wait.is_some() || self.waiting_get {
            return Err(Misuse("poll called before the last step was answered").into());
        }
        let at = match self.at {
            Some(at) => at,
            None => match self.find_base(cache)? {
                Ok(at) => at,
                Err(step) => return Ok(step),
            },
        };
        match self.walk(cache, at)? {
            Some(commit) => {
                self.done = true;
                Ok(Step::Done(commit))
            }
            None => {
                self.waiting_get = true;
                Ok(self.fetch.take_get().unwrap_or(Step::Get(Vec::new())))
            }
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if !std::mem::take(&mut self.waiting_get) {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        match self.fetch.provide(cache, objects) {
            Err(Error::Object(err)) => match (self.at, err) {
                (Some(at), err) => Err(self.named(at, err)),
                (None, err) => Err(err.into()),
            },
            other => other,
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (self.wait.take(), answer) {
            (Some(which @ (Ask::Branch | Ask::Tag)), Answer::Ref(state)) => {
                if let Some(RefState { value, .. }) = &state {
                    self.at = Some(*value);
                    if which == Ask::Branch {
                        let key = self.key(which).expect("a name");
                        cache.remember_ref(&key, state);
                    }
                }
            }
            (Some(Ask::Loose), Answer::List(listed)) => {
                let prefix = self.base.prefix.as_deref().unwrap_or_default();
                let hash_kind = cache.hash_kind();
                self.candidates.extend(
                    listed
                        .iter()
                        .filter_map(|l| store::parse_object_key(&l.key, hash_kind))
                        .filter(|id| hex_starts_with(id, prefix)),
                );
            }
            (Some(Ask::Repo), Answer::List(listed)) => {
                self.repo_exists = Some(!store::without_locks(listed).is_empty());
            }
            (Some(Ask::Packs), Answer::List(listed)) => {
                self.reading = pack::paired(&listed);
                if self.reading.is_empty() {
                    cache.set_packs(Default::default());
                }
            }
            (Some(Ask::Indexes), Answer::Read(read)) => {
                let reading = std::mem::take(&mut self.reading);
                let mut packs: Vec<PackFile> = pack::loaded(reading, read, cache.hash_kind())?;
                crate::order::sort_by(&mut packs, |a, b| a.key.cmp(&b.key));
                cache.set_packs(std::sync::Arc::new(packs));
            }
            (wait, _) => {
                self.wait = wait;
                return Err(Misuse("answer does not match the step asked for").into());
            }
        }
        Ok(())
    }
}

/// Whether the hex form of `id` starts with `prefix` (lowercase hex).
pub(crate) fn hex_starts_with(id: &ObjectId, prefix: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = id.as_slice();
    prefix.len() <= 2 * bytes.len()
        && prefix.bytes().enumerate().all(|(i, digit)| {
            let byte = bytes[i / 2];
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            HEX[usize::from(nibble)] == digit
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Resolve, Error> {
        Resolve::new(&ObjectCache::new(gix_hash::Kind::Sha1), "agent", text)
    }

    #[test]
    fn revisions_parse_as_git_reads_them() {
        let r = parse("main~2^2^^0~~0").unwrap();
        assert_eq!(r.back, vec![(1, 2), (2, 1), (1, 1), (1, 1)]);
        assert!(r.base.name.is_some() && r.base.prefix.is_none());
        let r = parse("cafe1234").unwrap();
        assert!(r.base.name.is_some() && r.base.prefix.as_deref() == Some("cafe1234"));
        let r = parse("CAFE").unwrap();
        assert_eq!(r.base.prefix.as_deref(), Some("cafe"));
        let full = "a".repeat(40);
        assert!(parse(&full).unwrap().base.id.is_some());
        for bad in [
            "",
            "~1",
            "^",
            "main~x",
            "main~99999999999",
            "a..b",
            "main~1:path",
            "ma in",
        ] {
            assert!(matches!(parse(bad), Err(Error::Invalid { .. })), "{bad:?}");
        }
        assert!(matches!(
            Resolve::new(&ObjectCache::new(gix_hash::Kind::Sha1), "a/b", "main"),
            Err(Error::Name(_))
        ));
    }
}
