//! The refs a repo of the store shows as a remote: its branches as `refs/heads/*`, its
//! tags as `refs/tags/*`, and `HEAD` naming its default branch.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::{
    cache::ObjectCache,
    object, order,
    step::{Answer, Misuse, Operation, Step},
    store::{self, NameError, RepoName},
};

use super::OpError as Error;

/// One ref of a repo, by the name a git client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// The name without the repo's namespace: `refs/heads/main`, `refs/tags/v1`.
    pub name: String,
    /// The object it names.
    pub id: ObjectId,
    /// The object an annotated tag (or a tag of a tag) finally names, if `id` is a tag.
    pub peeled: Option<ObjectId>,
}

/// A repo's refs, sorted by name, and the branch `HEAD` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// Every ref, sorted by name.
    pub refs: Vec<Ref>,
    /// The branch `HEAD` names (`refs/heads/main` when it exists, else `master`, else
    /// the first branch), `None` for a repo without branches.
    pub head: Option<String>,
}

impl Refs {
    /// The ids of every ref and every peeled tag: what a client may start from.
    pub fn tips(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.refs.iter().flat_map(|r| std::iter::once(r.id).chain(r.peeled))
    }

    /// The ref named `name`.
    pub fn get(&self, name: &str) -> Option<&Ref> {
        self.refs.iter().find(|r| r.name == name)
    }

    /// The id `HEAD` names, if the repo has a branch.
    pub fn head_id(&self) -> Option<ObjectId> {
        self.head.as_deref().and_then(|h| self.get(h)).map(|r| r.id)
    }
}

#[derive(Debug)]
enum Wait {
    /// Nothing asked yet.
    Start,
    /// The listing is out.
    List,
    /// These refs are to be read, or (`true`) are being read.
    Read(Vec<String>, bool),
    /// These tags are to be peeled, or (`true`) are being read: the ref's position, the
    /// tag to read and how deep it is.
    Peel(Vec<(usize, ObjectId, usize)>, bool),
    Done,
}

/// Read the refs of a repo: one listing, one read of every ref, then the tags they name,
/// peeled one level per round.
#[derive(Debug)]
pub struct ListRefs {
    repo: RepoName,
    wait: Wait,
    refs: Vec<Ref>,
}

impl ListRefs {
    /// The refs of `repo`.
    pub fn new(repo: &str) -> Result<Self, NameError> {
        Ok(ListRefs {
            repo: RepoName::new(repo)?,
            wait: Wait::Start,
            refs: Vec::new(),
        })
    }

    fn done(&mut self) -> Step<Refs> {
        self.wait = Wait::Done;
        let mut refs = std::mem::take(&mut self.refs);
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        let branch = |name: &str| refs.iter().any(|r| r.name == name).then(|| name.to_owned());
        let head = branch("refs/heads/main")
            .or_else(|| branch("refs/heads/master"))
            .or_else(|| {
                refs.iter()
                    .find(|r| r.name.starts_with("refs/heads/"))
                    .map(|r| r.name.clone())
            });
        Step::Done(Refs { refs, head })
    }
}

impl Operation for ListRefs {
    type Output = Refs;
    type Error = Error;

    fn poll(&mut self, _cache: &mut ObjectCache) -> Result<Step<Refs>, Error> {
        match &mut self.wait {
            Wait::Start => {
                self.wait = Wait::List;
                Ok(Step::List(self.repo.refs_prefix()))
            }
            Wait::Read(keys, out @ false) if !keys.is_empty() => {
                *out = true;
                Ok(Step::Read(keys.clone()))
            }
            Wait::Peel(tags, out @ false) if !tags.is_empty() => {
                *out = true;
                Ok(Step::Get(tags.iter().map(|(_, id, _)| *id).collect()))
            }
            Wait::Read(_, false) | Wait::Peel(_, false) => Ok(self.done()),
            Wait::Done => Err(Misuse("poll called after Done").into()),
            _ => Err(Misuse("poll called before the step was answered").into()),
        }
    }

    fn provide(&mut self, _cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        let Wait::Peel(tags, true) = std::mem::replace(&mut self.wait, Wait::Start) else {
            return Err(Misuse("provide called without an outstanding Get").into());
        };
        if tags.len() != objects.len() {
            return Err(Misuse("provide must answer every id of the Get, in order").into());
        }
        let mut next = Vec::new();
        for ((at, id, depth), stored) in tags.into_iter().zip(objects) {
            let stored = stored.ok_or(object::Error::NotFound { id })?;
            let (kind, content) = object::decode_content(&id, &stored, u64::MAX)?;
            if kind != Kind::Tag {
                continue;
            }
            let object::Object::Tag(tag) = object::parse(&id, kind, &content)? else {
                continue;
            };
            self.refs[at].peeled = Some(tag.target);
            if tag.target_kind == Kind::Tag {
                if depth >= crate::step::MAX_TAG_DEPTH {
                    return Err(Error::Refused(format!(
                        "the tag {} names tags {depth} deep",
                        self.refs[at].name
                    )));
                }
                next.push((at, tag.target, depth + 1));
            }
        }
        self.wait = Wait::Peel(next, false);
        Ok(())
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (std::mem::replace(&mut self.wait, Wait::Start), answer) {
            (Wait::List, Answer::List(listed)) => {
                let prefix = self.repo.refs_prefix();
                let mut keys: Vec<String> = store::without_locks(listed).into_iter().map(|l| l.key).collect();
                keys.retain(|k| k.starts_with(&prefix));
                order::sort(&mut keys);
                self.wait = Wait::Read(keys, false);
                Ok(())
            }
            (Wait::Read(keys, true), Answer::Read(values)) => {
                if keys.len() != values.len() {
                    return Err(Misuse("a Read must be answered with one value per key").into());
                }
                let strip = self.repo.refs_prefix().len() - "refs/".len();
                for (key, value) in keys.iter().zip(values) {
                    // A ref deleted since the listing is simply gone.
                    let Some(value) = value else { continue };
                    let id = parse_ref(&value).ok_or_else(|| {
                        Error::Refused(format!(
                            "the ref {key} does not hold an object id: {:?}",
                            bstr::BStr::new(&value)
                        ))
                    })?;
                    self.refs.push(Ref {
                        name: key[strip..].to_owned(),
                        id,
                        peeled: None,
                    });
                }
                // Only tags are peeled: branches name commits.
                let tags = (0..self.refs.len())
                    .filter(|&i| self.refs[i].name.starts_with("refs/tags/"))
                    .map(|i| (i, self.refs[i].id, 1))
                    .collect();
                self.wait = Wait::Peel(tags, false);
                Ok(())
            }
            _ => Err(Misuse("the answer does not match the step asked").into()),
        }
    }
}

/// A loose ref's content: `<hex>\n`.
fn parse_ref(value: &[u8]) -> Option<ObjectId> {
    let text = value.strip_suffix(b"\n").unwrap_or(value);
    crate::id::from_hex(text)
}
