//! The small repo operations: create, list and delete repos and branches, read heads.

use gix_hash::ObjectId;

use super::{Error, branch_not_found};
use crate::{
    cache::ObjectCache,
    commit::{self, Change, Signature},
    diff::FileChange,
    order,
    step::{Answer, CasOutcome, CasRef, Fetch, Listed, Misuse, Operation, RefState, Step},
    store::{self, BranchName, RepoName},
};

/// Where a new branch starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Start {
    /// At this commit.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Commit(#[serde(with = "crate::api::wire::id")] ObjectId),
    /// At the head of this branch of the same repo.
    Branch(String),
}

/// The small repo operations, each a few steps of IO.
#[derive(Debug)]
enum Admin {
    CreateRepo {
        build: Option<Box<commit::Commit>>,
        out: Option<commit::Output>,
    },
    ListRepos,
    DeleteRepo,
    CreateBranch {
        start: Start,
        from: Option<ObjectId>,
    },
    ListBranches,
    DeleteBranch,
    ReadHead,
}

/// What a repo operation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[derive(serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum AdminOutput {
    /// A repo was created with its first commit.
    Created {
        /// The first commit.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        #[serde(with = "crate::api::wire::id")]
        commit: ObjectId,
        /// Files in it.
        files: Vec<FileChange>,
    },
    /// Repo names, sorted.
    Repos(Vec<String>),
    /// Branch names of a repo, sorted.
    Branches(Vec<String>),
    /// A branch's head.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Head(#[serde(with = "crate::api::wire::id")] ObjectId),
    /// A repo or branch was deleted; the refs that were removed.
    Deleted(Vec<String>),
    /// A branch was created at this commit.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    BranchCreated(#[serde(with = "crate::api::wire::id")] ObjectId),
}

#[derive(Debug)]
enum Wait {
    Nothing,
    List,
    Ref,
    Put,
    Cas,
    Delete(Vec<String>),
    Get,
    Done,
}

/// A repo operation: create, list or delete repos; create, list or delete branches;
/// read a head. Build one with the constructors, then drive it.
#[derive(Debug)]
pub struct RepoOp {
    repo: Option<RepoName>,
    branch: Option<BranchName>,
    op: Admin,
    wait: Wait,
    listed: Option<Vec<Listed>>,
    head: Option<Option<RefState>>,
    cas: Option<CasOutcome>,
    fetch: Fetch,
    result: Option<AdminOutput>,
}

impl RepoOp {
    fn new(repo: Option<RepoName>, branch: Option<BranchName>, op: Admin) -> Self {
        RepoOp {
            repo,
            branch,
            op,
            wait: Wait::Nothing,
            listed: None,
            head: None,
            cas: None,
            fetch: Fetch::default(),
            result: None,
        }
    }

    /// Create `repo` with a first commit on `branch` holding `files` (puts only; may be
    /// empty, giving an empty tree).
    pub fn create_repo(
        cache: &ObjectCache,
        repo: &str,
        branch: &str,
        files: Vec<Change>,
        author: Signature,
        message: &str,
    ) -> Result<Self, Error> {
        let repo = RepoName::new(repo)?;
        let branch = BranchName::new(branch)?;
        let mut request = commit::Request::new(None, files, author, message);
        request.allow_empty = true;
        let build = commit::Commit::new(cache, request)?;
        Ok(Self::new(
            Some(repo),
            Some(branch),
            Admin::CreateRepo {
                build: Some(Box::new(build)),
                out: None,
            },
        ))
    }

    /// List every repo of the store.
    pub fn list_repos() -> Self {
        Self::new(None, None, Admin::ListRepos)
    }

    /// Delete `repo`: every ref of it. Its objects go at the next GC.
    pub fn delete_repo(repo: &str) -> Result<Self, Error> {
        Ok(Self::new(Some(RepoName::new(repo)?), None, Admin::DeleteRepo))
    }

    /// Create `branch` in `repo` at `start`.
    pub fn create_branch(repo: &str, branch: &str, start: Start) -> Result<Self, Error> {
        if let Start::Branch(name) = &start {
            BranchName::new(name.clone())?;
        }
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::CreateBranch { start, from: None },
        ))
    }

    /// List the branches of `repo`.
    pub fn list_branches(repo: &str) -> Result<Self, Error> {
        Ok(Self::new(Some(RepoName::new(repo)?), None, Admin::ListBranches))
    }

    /// Delete `branch` of `repo`.
    pub fn delete_branch(repo: &str, branch: &str) -> Result<Self, Error> {
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::DeleteBranch,
        ))
    }

    /// Read the head of `branch` in `repo`.
    pub fn read_head(repo: &str, branch: &str) -> Result<Self, Error> {
        Ok(Self::new(
            Some(RepoName::new(repo)?),
            Some(BranchName::new(branch)?),
            Admin::ReadHead,
        ))
    }

    fn repo(&self) -> Result<&RepoName, Error> {
        self.repo
            .as_ref()
            .ok_or(Error::Misuse(Misuse("this operation names no repo")))
    }

    fn branch(&self) -> Result<&BranchName, Error> {
        self.branch
            .as_ref()
            .ok_or(Error::Misuse(Misuse("this operation names no branch")))
    }

    fn key(&self) -> Result<String, Error> {
        Ok(self.repo()?.branch_key(self.branch()?))
    }

    fn list(&mut self, prefix: String) -> Step<AdminOutput> {
        self.wait = Wait::List;
        Step::List(prefix)
    }

    fn read_ref(&mut self) -> Result<Step<AdminOutput>, Error> {
        self.wait = Wait::Ref;
        Ok(Step::ReadRef(self.key()?))
    }

    fn cas(&mut self, expected: Option<RefState>, new: Option<ObjectId>) -> Result<Step<AdminOutput>, Error> {
        self.wait = Wait::Cas;
        Ok(Step::CasRef(CasRef {
            key: self.key()?,
            expected,
            new,
        }))
    }

    fn step(&mut self, cache: &mut ObjectCache) -> Result<Step<AdminOutput>, Error> {
        if let Some(result) = self.result.take() {
            self.wait = Wait::Done;
            return Ok(Step::Done(result));
        }
        let repo = self.repo.clone();
        let not_found = || Error::RepoNotFound {
            repo: repo.as_ref().map(ToString::to_string).unwrap_or_default(),
        };
        match &mut self.op {
            Admin::CreateRepo { build, out } => {
                if self.listed.is_none() {
                    let prefix = self.repo()?.refs_prefix();
                    return Ok(self.list(prefix));
                }
                if self.listed.as_ref().is_some_and(|l| !l.is_empty()) {
                    return Err(Error::RepoExists {
                        repo: self.repo()?.to_string(),
                    });
                }
                if let Some(op) = build {
                    match op.poll(cache)? {
                        Step::Get(ids) => {
                            self.wait = Wait::Get;
                            return Ok(Step::Get(ids));
                        }
                        Step::Done(mut output) => {
                            let objects = std::mem::take(&mut output.objects);
                            *out = Some(output);
                            *build = None;
                            self.wait = Wait::Put;
                            return Ok(Step::Put(objects));
                        }
                        _ => return Err(Misuse("a commit build asks only for objects").into()),
                    }
                }
                let Some(output) = out.clone() else {
                    return Err(Misuse("create_repo lost its commit").into());
                };
                match self.cas.take() {
                    None => self.cas(None, Some(output.id)),
                    Some(CasOutcome::Won { version }) => {
                        let key = self.key()?;
                        cache.remember_ref(
                            &key,
                            Some(RefState {
                                value: output.id,
                                version,
                            }),
                        );
                        self.wait = Wait::Done;
                        Ok(Step::Done(AdminOutput::Created {
                            commit: output.id,
                            files: output.files,
                        }))
                    }
                    Some(CasOutcome::Lost { .. }) => Err(Error::RepoExists {
                        repo: self.repo()?.to_string(),
                    }),
                }
            }
            Admin::ListRepos => match self.listed.take() {
                None => Ok(self.list(store::NAMESPACES.to_owned())),
                Some(listed) => {
                    let mut repos: Vec<String> = listed
                        .iter()
                        .filter_map(|l| store::parse_branch_key(&l.key))
                        .map(|(repo, _)| repo.to_string())
                        .collect();
                    order::sort(&mut repos);
                    repos.dedup();
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Repos(repos)))
                }
            },
            Admin::ListBranches => match self.listed.take() {
                None => {
                    let prefix = self.repo()?.branches_prefix();
                    Ok(self.list(prefix))
                }
                Some(listed) => {
                    let repo = self.repo()?.clone();
                    let mut branches: Vec<String> = listed
                        .iter()
                        .filter_map(|l| store::parse_branch_key(&l.key))
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, b)| b.to_string())
                        .collect();
                    if branches.is_empty() {
                        return Err(not_found());
                    }
                    order::sort(&mut branches);
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Branches(branches)))
                }
            },
            Admin::DeleteRepo => match self.listed.take() {
                None => {
                    let prefix = self.repo()?.refs_prefix();
                    Ok(self.list(prefix))
                }
                Some(listed) => {
                    let keys: Vec<String> = listed.into_iter().map(|l| l.key).collect();
                    if keys.is_empty() {
                        return Err(not_found());
                    }
                    for key in &keys {
                        cache.remember_ref(key, None);
                    }
                    self.wait = Wait::Delete(keys.clone());
                    Ok(Step::Delete(keys))
                }
            },
            Admin::ReadHead => match self.head.take() {
                None => self.read_ref(),
                Some(None) => Err(branch_not_found(self.repo()?, self.branch()?)),
                Some(Some(state)) => {
                    let key = self.key()?;
                    let head = state.value;
                    cache.remember_ref(&key, Some(state));
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Head(head)))
                }
            },
            Admin::DeleteBranch => match (self.head.clone(), self.cas.take()) {
                (None, _) => self.read_ref(),
                (Some(None), _) => Err(branch_not_found(self.repo()?, self.branch()?)),
                (Some(Some(state)), None) => self.cas(Some(state), None),
                (Some(Some(_)), Some(CasOutcome::Won { .. })) => {
                    let key = self.key()?;
                    cache.remember_ref(&key, None);
                    self.wait = Wait::Done;
                    Ok(Step::Done(AdminOutput::Deleted(vec![key])))
                }
                // It moved meanwhile: look again, and delete what is there now.
                (Some(Some(_)), Some(CasOutcome::Lost { current })) => {
                    self.head = Some(current);
                    self.step(cache)
                }
            },
            Admin::CreateBranch { start, from } => {
                let target = match (start.clone(), *from) {
                    (_, Some(id)) => id,
                    (Start::Commit(id), None) => {
                        *from = Some(id);
                        id
                    }
                    (Start::Branch(name), None) => match self.head.take() {
                        None => {
                            let repo = self.repo()?.clone();
                            self.wait = Wait::Ref;
                            return Ok(Step::ReadRef(repo.branch_key(&BranchName::new(name)?)));
                        }
                        Some(None) => {
                            return Err(Error::BranchNotFound {
                                repo: self.repo()?.to_string(),
                                branch: name,
                            });
                        }
                        Some(Some(state)) => {
                            *from = Some(state.value);
                            state.value
                        }
                    },
                };
                // The start must be a commit the store has (a tag is peeled to its commit).
                self.fetch.reset_want();
                let Some((target, _)) = self.fetch.peeled_commit(cache, &target)? else {
                    self.wait = Wait::Get;
                    return Ok(self.fetch.take_get().unwrap_or(Step::Get(vec![target])));
                };
                match self.cas.take() {
                    None => self.cas(None, Some(target)),
                    Some(CasOutcome::Won { version }) => {
                        let key = self.key()?;
                        cache.remember_ref(&key, Some(RefState { value: target, version }));
                        self.wait = Wait::Done;
                        Ok(Step::Done(AdminOutput::BranchCreated(target)))
                    }
                    Some(CasOutcome::Lost { .. }) => Err(Error::BranchExists {
                        repo: self.repo()?.to_string(),
                        branch: self.branch()?.to_string(),
                    }),
                }
            }
        }
    }
}

impl Operation for RepoOp {
    type Output = AdminOutput;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<AdminOutput>, Error> {
        match self.wait {
            Wait::Nothing => self.step(cache),
            Wait::Done => Err(Misuse("poll called after Done").into()),
            _ => Err(Misuse("poll called before the last step was answered").into()),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        if !matches!(self.wait, Wait::Get) {
            return Err(Misuse("provide called without an outstanding Get").into());
        }
        self.wait = Wait::Nothing;
        match &mut self.op {
            Admin::CreateRepo { build: Some(op), .. } => Ok(op.provide(cache, objects)?),
            _ => self.fetch.provide(cache, objects),
        }
    }

    fn answer(&mut self, _cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (std::mem::replace(&mut self.wait, Wait::Nothing), answer) {
            (Wait::List, Answer::List(listed)) => self.listed = Some(store::without_locks(listed)),
            (Wait::Ref, Answer::Ref(state)) => self.head = Some(state),
            (Wait::Put, Answer::Put) => {}
            (Wait::Cas, Answer::Cas(outcome)) => self.cas = Some(outcome),
            (Wait::Delete(keys), Answer::Deleted) => self.result = Some(AdminOutput::Deleted(keys)),
            (wait, _) => {
                self.wait = wait;
                return Err(Misuse("answer does not match the step asked").into());
            }
        }
        Ok(())
    }
}
