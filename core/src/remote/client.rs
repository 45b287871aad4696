//! A repo of the store as a git client: push a branch to any git server, fetch a branch
//! from one, import a whole remote as a new repo. The HTTP requests are steps
//! ([`Step::Http`]) the driver carries out; everything else is decided here.
//!
//! - [`Push`]: reads the remote's refs (`info/refs?service=git-receive-pack`), refuses a
//!   non-fast-forward unless forced (the remote's old commit must be in the store and an
//!   ancestor of the branch), packs what the remote lacks — a walk from the branch that
//!   stops at what the remote's refs reach ([`Upload`]) — and sends
//!   it with the ref update, reading git's report-status.
//! - [`Fetch`]: reads the remote's refs over protocol v2 (`ls-refs`), asks for the tips
//!   it lacks with its own tips as haves, and stores the pack as a push into the store
//!   would be ([`Receive`]): every object checked, the pack and
//!   its index written, each branch moved by compare-and-swap, fast-forward only unless
//!   forced.
//!   - `depth`: a shallow fetch (`deepen`). The remote's boundary commits go into the
//!     store's `shallow` file, as git keeps them, and the file is kept to exactly the
//!     commits that still lack a parent ([`receive`]).
//!   - `filter` (`blob:none`, `blob:limit=<n>`): a partial fetch. The pack is marked
//!     `.promisor`, and the store's `config` names the remote a promisor remote
//!     (`remote.<name>.promisor`), so that `git fsck` accepts the objects left out and
//!     git fetches them from there when it needs them. Later fetches from that remote
//!     keep its filter.

use gix_hash::ObjectId;

use super::ancestry::Ancestry;
use crate::{
    cache::ObjectCache,
    remote::{
        AGENT, Capabilities, Limits, OpError as Error,
        http::Service,
        receive::{self, Receive, RefUpdate},
        upload::{self, Upload},
        v0, v2,
    },
    step::{Answer, HttpMethod, HttpRequest, HttpResponse, Misuse, Operation, Step},
    store::{BranchName, RepoName},
};

/// The largest advertisement or report read from a remote.
pub const MAX_MESSAGE_BYTES: u64 = 64 << 20;

/// The largest pack fetched from a remote.
pub const MAX_PACK_BYTES: u64 = 4 << 30;

/// A git remote: its URL and the headers every request to it carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Remote {
    /// `http://` or `https://`, e.g. `https://git.example.com/agent.git`. Credentials in
    /// it (`https://user:token@host/…`) are sent as basic auth and never in the URL.
    pub url: String,
    /// Extra headers, e.g. `Authorization: Bearer <token>`.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

impl Remote {
    /// The remote at `url`, checked: an `http(s)://` URL with a host; credentials in it
    /// become an `Authorization: Basic` header.
    pub(crate) fn checked(&self) -> Result<Remote, Error> {
        let refuse = |why: &str| Error::Refused(format!("the remote URL {:?} {why}", redact(&self.url)));
        let (scheme, rest) = self
            .url
            .split_once("://")
            .ok_or_else(|| refuse("is not a URL (http:// or https://)"))?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(refuse("is not http:// or https://"));
        }
        if self.url.chars().any(|c| c.is_whitespace() || c.is_control()) || self.url.contains('#') {
            return Err(refuse("has spaces, control characters or a fragment"));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(refuse("has no host"));
        }
        if self.url.contains('?') {
            return Err(refuse("has a query"));
        }
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            let bad = |c: char| c.is_control() || c == '\n' || c == '\r';
            if name.is_empty() || name.chars().any(|c| bad(c) || c == ':' || c == ' ') || value.chars().any(bad) {
                return Err(Error::Refused(format!(
                    "the header {name:?} is not a valid HTTP header"
                )));
            }
            headers.push((name.clone(), value.clone()));
        }
        if let Some(userinfo) = userinfo {
            let decoded = percent_decode(userinfo).ok_or_else(|| refuse("has malformed credentials"))?;
            headers.push(("Authorization".into(), format!("Basic {}", base64(&decoded))));
        }
        let path = path.trim_end_matches('/');
        Ok(Remote {
            url: format!("{scheme}://{host}/{path}").trim_end_matches('/').to_owned(),
            headers,
        })
    }

    /// A protocol v2 command to the remote's `git-upload-pack`.
    pub(crate) fn upload_pack(&self, body: Vec<u8>, max: u64) -> HttpRequest {
        let service = Service::UploadPack;
        self.request(
            HttpMethod::Post,
            service.name(),
            &[
                ("Git-Protocol", "version=2"),
                ("Content-Type", service.request_type()),
                ("Accept", service.result_type()),
            ],
            body,
            max,
        )
    }

    pub(crate) fn request(
        &self,
        method: HttpMethod,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        max: u64,
    ) -> HttpRequest {
        let mut all = self.headers.clone();
        all.extend(headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        all.push(("User-Agent".into(), format!("git/2.0 ({AGENT})")));
        HttpRequest {
            method,
            url: format!("{}/{path}", self.url),
            headers: all,
            body,
            max_response_bytes: max,
        }
    }
}

/// A URL with its credentials hidden, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What a response must be: 200, else an error naming the status.
pub(crate) fn check(response: &HttpResponse, url: &str, what: &str) -> Result<(), Error> {
    let body = String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
        .trim()
        .to_owned();
    let hint = match response.status {
        200 => return Ok(()),
        401 => " (the remote wants credentials: give a token)",
        403 => " (the credentials do not allow this)",
        404 => " (no such repository)",
        _ => "",
    };
    Err(Error::Remote(format!(
        "{what} at {} answered HTTP {}{hint}{}",
        redact(url),
        response.status,
        if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        }
    )))
}

/// A push of a branch to a remote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PushRequest {
    /// The repo of the store.
    pub repo: String,
    /// Its branch pushed.
    pub branch: String,
    /// The remote.
    pub remote: Remote,
    /// The remote's ref to update (default: `refs/heads/<branch>`).
    #[serde(default)]
    pub remote_ref: Option<String>,
    /// Push even if the remote's branch is not an ancestor of ours (`git push --force`).
    #[serde(default)]
    pub force: bool,
}

/// How a push went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pushed {
    /// The remote's ref.
    pub remote_ref: String,
    /// What it held before (`None`: it did not exist).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    pub old: Option<ObjectId>,
    /// What it holds now.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub new: ObjectId,
    /// It already held the branch's commit: nothing was sent.
    pub up_to_date: bool,
    /// How many objects were sent.
    pub objects: usize,
    /// How many bytes the pack took.
    pub pack_bytes: usize,
    /// How many HTTP requests it took.
    pub requests: u32,
}

#[derive(Debug)]
enum PushStage {
    ReadHead,
    Advertise,
    Ancestry {
        advertisement: v0::Advertisement,
        walk: Ancestry,
    },
    Pack {
        advertisement: v0::Advertisement,
        upload: Box<Upload>,
    },
    Send,
    Done,
}

/// Push a branch of the store to a remote: see the [module](self).
#[derive(Debug)]
pub struct Push {
    request: PushRequest,
    remote: Remote,
    remote_ref: String,
    branch_key: String,
    stage: PushStage,
    head: Option<ObjectId>,
    old: Option<ObjectId>,
    sideband: bool,
    objects: usize,
    pack_bytes: usize,
    requests: u32,
    /// Finished, and whether the remote was up to date already.
    finished: Option<bool>,
}

impl Push {
    /// Check the request: names, the URL, the remote ref.
    pub fn new(request: PushRequest) -> Result<Self, Error> {
        let repo = RepoName::new(&request.repo)?;
        let branch = BranchName::new(&request.branch)?;
        let remote = request.remote.checked()?;
        let remote_ref = request
            .remote_ref
            .clone()
            .unwrap_or_else(|| format!("refs/heads/{}", request.branch));
        if !remote_ref.starts_with("refs/") || gix_validate::reference::name(remote_ref.as_bytes().into()).is_err() {
            return Err(Error::Refused(format!(
                "{remote_ref:?} is not a ref name a remote accepts"
            )));
        }
        Ok(Push {
            branch_key: repo.branch_key(&branch),
            request,
            remote,
            remote_ref,
            stage: PushStage::ReadHead,
            head: None,
            old: None,
            sideband: false,
            objects: 0,
            pack_bytes: 0,
            requests: 0,
            finished: None,
        })
    }

    fn http(&mut self, request: HttpRequest) -> Step<Pushed> {
        self.requests += 1;
        Step::Http(request)
    }

    fn done(&mut self, up_to_date: bool) -> Result<Step<Pushed>, Error> {
        self.stage = PushStage::Done;
        let new = self.head.ok_or(Misuse("the push finished without a head"))?;
        Ok(Step::Done(Pushed {
            remote_ref: self.remote_ref.clone(),
            old: self.old,
            new,
            up_to_date,
            objects: self.objects,
            pack_bytes: self.pack_bytes,
            requests: self.requests,
        }))
    }

    /// Pack what the remote lacks: a walk from the branch that stops at what the
    /// remote's refs reach.
    fn start_pack(&mut self, advertisement: v0::Advertisement) -> Result<(), Error> {
        let head = self.head.ok_or(Misuse("no head to pack"))?;
        let mut request = upload::FetchRequest::new(&self.request.repo, vec![head]);
        request.haves = advertisement
            .refs
            .iter()
            .flat_map(|r| [Some(r.id), r.peeled])
            .flatten()
            .collect();
        request.haves.truncate(upload::MAX_HAVES);
        self.stage = PushStage::Pack {
            advertisement,
            upload: Box::new(Upload::new(request)?),
        };
        Ok(())
    }
}

impl Operation for Push {
    type Output = Pushed;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Pushed>, Error> {
        if let Some(up_to_date) = self.finished.take() {
            return self.done(up_to_date);
        }
        match &mut self.stage {
            PushStage::Advertise => {
                let request = self.remote.request(
                    HttpMethod::Get,
                    "info/refs?service=git-receive-pack",
                    &[],
                    Vec::new(),
                    MAX_MESSAGE_BYTES,
                );
                Ok(self.http(request))
            }
            PushStage::ReadHead => Ok(Step::ReadRef(self.branch_key.clone())),
            PushStage::Ancestry { walk, .. } => match walk.next(&|_| None) {
                Some(ids) => Ok(Step::Get(ids)),
                None => {
                    let PushStage::Ancestry { advertisement, walk } =
                        std::mem::replace(&mut self.stage, PushStage::Done)
                    else {
                        unreachable!("matched above")
                    };
                    if !walk.found() {
                        return Err(Error::Rejected {
                            name: self.remote_ref.clone(),
                            reason: "non-fast-forward: the remote's branch is not in this branch's history (fetch first, or force)".into(),
                        });
                    }
                    self.start_pack(advertisement)?;
                    self.poll(cache)
                }
            },
            PushStage::Pack { upload, .. } => match upload.poll(cache)? {
                Step::Done(fetched) => {
                    let PushStage::Pack { advertisement, .. } = std::mem::replace(&mut self.stage, PushStage::Send)
                    else {
                        unreachable!("matched above")
                    };
                    let pack = fetched.pack.ok_or(Misuse("a done fetch request always packs"))?;
                    self.objects = pack.objects;
                    self.pack_bytes = pack.bytes.len();
                    let caps = &advertisement.capabilities;
                    if !caps.contains("report-status") || !caps.contains("ofs-delta") {
                        return Err(Error::Remote(
                            "the remote does not offer report-status and ofs-delta, which snapgit's push needs".into(),
                        ));
                    }
                    self.sideband = caps.contains("side-band-64k");
                    let mut wanted = vec![
                        "report-status".to_owned(),
                        "ofs-delta".to_owned(),
                        format!("agent={AGENT}"),
                    ];
                    if self.sideband {
                        wanted.push("side-band-64k".into());
                    }
                    if caps.contains("quiet") {
                        wanted.push("quiet".into());
                    }
                    let zero = ObjectId::null(cache.hash_kind());
                    let push = v0::PushRequest {
                        shallow: Vec::new(),
                        commands: vec![v0::Command {
                            old: self.old.unwrap_or(zero),
                            new: pack_head(self.head)?,
                            name: self.remote_ref.clone().into(),
                        }],
                        capabilities: Capabilities::new(wanted),
                        push_options: Vec::new(),
                        pack: &pack.bytes,
                    };
                    let mut body = Vec::new();
                    push.write_to(&mut body)?;
                    let service = Service::ReceivePack;
                    let request = self.remote.request(
                        HttpMethod::Post,
                        service.name(),
                        &[
                            ("Content-Type", service.request_type()),
                            ("Accept", service.result_type()),
                        ],
                        body,
                        MAX_MESSAGE_BYTES,
                    );
                    Ok(self.http(request))
                }
                step => Ok(step.map(|_| unreachable!("only a step other than Done is passed on"))),
            },
            PushStage::Send => Err(Misuse("poll called before the push was answered").into()),
            PushStage::Done => Err(Misuse("poll called after Done").into()),
        }
    }

    /// Only the blobs the pack sends (the remote's old commit, which the store may lack,
    /// is never fetched).
    fn fetches_promised(&self) -> bool {
        matches!(&self.stage, PushStage::Pack { upload, .. } if upload.fetches_promised())
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match &mut self.stage {
            PushStage::Ancestry { walk, .. } => walk.provide(cache, objects),
            PushStage::Pack { upload, .. } => upload.provide(cache, objects),
            _ => Err(Misuse("provide called without an outstanding Get").into()),
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (&mut self.stage, answer) {
            (PushStage::ReadHead, Answer::Ref(state)) => {
                let head = state.map(|s| s.value).ok_or_else(|| {
                    Error::NotFound(format!(
                        "the branch {} of the repo {} does not exist",
                        self.request.branch, self.request.repo
                    ))
                })?;
                self.head = Some(head);
                self.stage = PushStage::Advertise;
                Ok(())
            }
            (PushStage::Advertise, Answer::Http(response)) => {
                check(&response, &self.remote.url, "the remote's refs")?;
                let body = Service::ReceivePack.strip_header(&response.body)?;
                let advertisement = v0::Advertisement::from_bytes(body, &Limits::default())?;
                self.old = advertisement
                    .refs
                    .iter()
                    .find(|r| r.name == self.remote_ref.as_bytes())
                    .map(|r| r.id);
                let head = pack_head(self.head)?;
                match self.old {
                    Some(old) if old == head => self.finished = Some(true),
                    Some(old) if !self.request.force => {
                        self.stage = PushStage::Ancestry {
                            advertisement,
                            walk: Ancestry::new(head, old),
                        };
                    }
                    _ => self.start_pack(advertisement)?,
                }
                Ok(())
            }
            (PushStage::Pack { upload, .. }, answer) => upload.answer(cache, answer),
            (PushStage::Send, Answer::Http(response)) => {
                check(&response, &self.remote.url, "the push")?;
                let (report, _progress) = v0::Report::from_bytes(&response.body, self.sideband, &Limits::default())?;
                if let v0::Status::Failed(reason) = &report.unpack {
                    return Err(Error::Remote(format!("the remote could not unpack the push: {reason}")));
                }
                for status in &report.refs {
                    if let v0::Status::Failed(reason) = &status.status {
                        return Err(Error::Rejected {
                            name: status.name.to_string(),
                            reason: reason.clone(),
                        });
                    }
                }
                if !report.refs.iter().any(|r| r.name == self.remote_ref.as_bytes()) {
                    return Err(Error::Remote(format!(
                        "the remote did not report on {}",
                        self.remote_ref
                    )));
                }
                self.finished = Some(false);
                Ok(())
            }
            _ => Err(Misuse("the answer does not match the step asked").into()),
        }
    }
}

fn pack_head(head: Option<ObjectId>) -> Result<ObjectId, Error> {
    head.ok_or_else(|| Misuse("no head to push").into())
}

/// A fetch of branches (and tags) from a remote into a repo of the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FetchRequest {
    /// The repo of the store fetched into (created if it does not exist).
    pub repo: String,
    /// The remote.
    pub remote: Remote,
    /// The remote's branches (`main`) or refs (`refs/heads/main`, `refs/tags/v1`) to
    /// fetch, each into the ref of the same name; empty: every branch and tag (an
    /// import).
    #[serde(default)]
    pub refs: Vec<String>,
    /// With one ref: the branch of the store it goes to instead.
    #[serde(default)]
    pub into: Option<String>,
    /// Move a branch even when the fetched commit does not descend from it, and move
    /// existing tags.
    #[serde(default)]
    pub force: bool,
    /// A shallow fetch: this many commits of each ref's history (`git fetch --depth`).
    #[serde(default)]
    pub depth: Option<u32>,
    /// A partial fetch: what the remote leaves out, as `git fetch --filter` takes it
    /// (`blob:none`, `blob:limit=<n>[kmg]`).
    #[serde(default)]
    pub filter: Option<String>,
}

/// The deepest shallow fetch asked for; git's own "infinite" depth is larger, and a
/// deeper fetch is a whole one.
pub const MAX_DEPTH: u32 = 1 << 30;

/// One ref a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FetchedRef {
    /// The remote's ref.
    pub remote_ref: String,
    /// The store's ref it went to (`refs/heads/<branch>`, `refs/tags/<tag>`).
    pub local_ref: String,
    /// What the store's ref held before (`None`: it did not exist).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(with = "crate::api::wire::opt_id")]
    pub old: Option<ObjectId>,
    /// What it holds now.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "crate::api::wire::id")]
    pub new: ObjectId,
}

/// How a fetch went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Fetched {
    /// Every ref fetched, sorted by name, moved or already up to date.
    pub refs: Vec<FetchedRef>,
    /// How many objects the pack held.
    pub objects: usize,
    /// How many bytes it took.
    pub pack_bytes: usize,
    /// How many HTTP requests it took.
    pub requests: u32,
    /// Commits the store now holds without their parents (the shallow boundary), after
    /// a shallow fetch or in a shallow store.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[serde(with = "crate::api::wire::ids")]
    pub shallow: Vec<ObjectId>,
    /// The filter the remote applied: the store is a partial clone of it.
    pub filter: Option<String>,
}

#[derive(Debug)]
enum FetchStage {
    Advertise,
    LsRefs,
    Local(super::refs::ListRefs),
    /// Reading the store's `shallow` and `config`.
    Files,
    /// Naming the remote a promisor remote in `config`.
    Config(crate::step::Swap),
    /// Asking for the pack.
    Ask,
    Fetch,
    Store(Box<Receive>),
    Done,
}

/// Fetch branches from a remote into a repo of the store: see the [module](self).
#[derive(Debug)]
pub struct Fetch {
    request: FetchRequest,
    remote: Remote,
    stage: FetchStage,
    /// The refs chosen: (remote ref, local ref, remote id).
    chosen: Vec<(String, String, ObjectId)>,
    /// The store's refs of the repo.
    local: super::refs::Refs,
    objects: usize,
    pack_bytes: usize,
    requests: u32,
    /// The filter asked for, or the one `config` records for this remote.
    filter: Option<(v2::Filter, String)>,
    /// The store's shallow commits, as read.
    shallows: Vec<ObjectId>,
    /// The fetch's pack, once read, with the boundary the remote sent.
    pack: Option<(Vec<u8>, Vec<ObjectId>)>,
    /// The shallow boundary after the fetch.
    boundary: Vec<ObjectId>,
    /// Swaps of `config` lost to another writer.
    config_attempts: u32,
}

impl Fetch {
    /// Check the request: names, the URL.
    pub fn new(request: FetchRequest) -> Result<Self, Error> {
        RepoName::new(&request.repo)?;
        let remote = request.remote.checked()?;
        if request.into.is_some() && request.refs.len() != 1 {
            return Err(Error::Refused("`into` needs exactly one ref to fetch".into()));
        }
        if let Some(into) = &request.into {
            BranchName::new(into)?;
        }
        if let Some(depth) = request.depth
            && !(1..=MAX_DEPTH).contains(&depth)
        {
            return Err(Error::Refused(format!(
                "a depth of {depth} is not between 1 and {MAX_DEPTH}"
            )));
        }
        let filter = match &request.filter {
            Some(spec) => Some((parse_filter(spec)?, spec.clone())),
            None => None,
        };
        for name in &request.refs {
            let full = full_ref(name);
            if gix_validate::reference::name(full.as_bytes().into()).is_err() {
                return Err(Error::Refused(format!("{name:?} is not a ref name")));
            }
        }
        Ok(Fetch {
            request,
            remote,
            stage: FetchStage::Advertise,
            chosen: Vec::new(),
            local: super::refs::Refs::default(),
            objects: 0,
            pack_bytes: 0,
            requests: 0,
            filter,
            shallows: Vec::new(),
            pack: None,
            boundary: Vec::new(),
            config_attempts: 0,
        })
    }

    fn upload_pack(&mut self, body: Vec<u8>, max: u64) -> Step<Fetched> {
        self.requests += 1;
        Step::Http(self.remote.upload_pack(body, max))
    }

    /// The updates the fetched pack makes: refs that differ from the store's.
    fn updates(&self) -> Vec<RefUpdate> {
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        self.chosen
            .iter()
            .filter_map(|(_, local, id)| {
                let old = self.local.get(local).map(|r| r.id);
                (old != Some(*id)).then(|| RefUpdate {
                    name: local.clone(),
                    old: old.unwrap_or(zero),
                    new: *id,
                })
            })
            .collect()
    }

    fn done(&mut self) -> Step<Fetched> {
        self.stage = FetchStage::Done;
        let mut refs: Vec<FetchedRef> = self
            .chosen
            .iter()
            .map(|(remote_ref, local_ref, id)| FetchedRef {
                remote_ref: remote_ref.clone(),
                local_ref: local_ref.clone(),
                old: self.local.get(local_ref).map(|r| r.id),
                new: *id,
            })
            .collect();
        refs.sort_by(|a, b| a.local_ref.cmp(&b.local_ref));
        Step::Done(Fetched {
            refs,
            objects: self.objects,
            pack_bytes: self.pack_bytes,
            requests: self.requests,
            shallow: std::mem::take(&mut self.boundary),
            filter: self.filter.as_ref().map(|(_, spec)| spec.clone()),
        })
    }

    /// Ask for the pack: the wants, the store's tips as haves, and how the history and
    /// the objects are cut.
    fn fetch_request(&mut self) -> Result<Step<Fetched>, Error> {
        let updates = self.updates();
        if updates.is_empty() && self.shallows.is_empty() {
            // Up to date, and no history is cut: there is nothing to deepen.
            return Ok(self.done());
        }
        // Every ref up to date, at a depth: the tips again, to deepen their history.
        let mut wants: Vec<ObjectId> = if updates.is_empty() {
            self.chosen.iter().map(|(_, _, id)| *id).collect()
        } else {
            updates.iter().map(|u| u.new).collect()
        };
        wants.sort();
        wants.dedup();
        let mut haves: Vec<ObjectId> = self.local.tips().collect();
        haves.truncate(256);
        let fetch = v2::Fetch {
            wants,
            haves,
            done: true,
            ofs_delta: true,
            no_progress: true,
            // Only a shallow fetch tells the remote where the store's history is cut: a
            // whole fetch asks for whole history, which settles the boundary it reaches.
            shallows: if self.request.depth.is_some() {
                self.shallows.clone()
            } else {
                Vec::new()
            },
            deepen: self
                .request
                .depth
                .map(|depth| v2::Deepen::Depth { depth, relative: false }),
            filter: self.filter.as_ref().map(|(filter, _)| *filter),
            ..Default::default()
        };
        let mut body = Vec::new();
        v2::Request::new(v2::Command::Fetch(fetch)).write_to(&mut body)?;
        self.stage = FetchStage::Fetch;
        Ok(self.upload_pack(body, MAX_PACK_BYTES))
    }

    /// Store the fetched pack as a push into the repo would be, with what the remote cut.
    fn store(&mut self) -> Result<(), Error> {
        let (pack, boundary) = self.pack.take().ok_or(Misuse("no pack to store"))?;
        let request = receive::PushRequest {
            repo: self.request.repo.clone(),
            updates: self.updates(),
            pack,
            allow_non_fast_forward: self.request.force,
            policy: crate::policy::Policy::default(),
            cut: receive::Cut {
                promisor: self.filter.is_some(),
                shallow: boundary,
                deepen: self.updates().is_empty(),
            },
        };
        self.stage = FetchStage::Store(Box::new(Receive::new(request)?));
        Ok(())
    }
}

/// The key of the repository's configuration.
pub(crate) const CONFIG: &str = "config";

/// The ids of a `shallow` file, one hex id per line.
pub(crate) fn parse_ids(bytes: &[u8], kind: gix_hash::Kind) -> Result<Vec<ObjectId>, Error> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            crate::id::from_hex(line).filter(|id| id.kind() == kind).ok_or_else(|| {
                Error::Refused(format!(
                    "the store's shallow file has a line that is not an object id: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                ))
            })
        })
        .collect()
}

/// A filter spec a partial fetch may ask for: the blob filters (a tree filter leaves
/// out trees that every read of a commit needs).
fn parse_filter(spec: &str) -> Result<v2::Filter, Error> {
    match v2::Filter::from_spec(spec) {
        Ok(filter @ (v2::Filter::BlobNone | v2::Filter::BlobLimit(_))) => Ok(filter),
        _ => Err(Error::Refused(format!(
            "the filter {spec:?} is not one snapgit fetches with (blob:none, blob:limit=<n>)"
        ))),
    }
}

/// The name of the promisor remote `url` is in a store's `config`.
fn promisor_name(url: &str) -> String {
    let id = crate::object::blob_id(gix_hash::Kind::Sha1, url.as_bytes())
        .map_or_else(|_| "0".repeat(12), |id| id.to_hex_with_len(12).to_string());
    format!("snapgit-{id}")
}

/// The promisor remotes of `config`, in order: (URL, filter). A section
/// `[remote "<name>"]` with `promisor = true` and a `url`; the filter is its
/// `partialclonefilter`, `blob:none` without one.
pub(crate) fn promisor_remotes(config: &str) -> Vec<(String, String)> {
    #[derive(Default)]
    struct Section {
        url: Option<String>,
        promisor: bool,
        filter: Option<String>,
    }
    let mut sections: Vec<Section> = Vec::new();
    let mut inside = false;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line.to_ascii_lowercase().starts_with("[remote \"");
            if inside {
                sections.push(Section::default());
            }
            continue;
        }
        let (true, Some(section)) = (inside, sections.last_mut()) else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        match key.as_str() {
            "url" => section.url = Some(value.to_owned()),
            "promisor" => section.promisor = value.eq_ignore_ascii_case("true"),
            "partialclonefilter" => section.filter = Some(value.to_owned()),
            _ => {}
        }
    }
    sections
        .into_iter()
        .filter(|s| s.promisor)
        .filter_map(|s| Some((s.url?, s.filter.unwrap_or_else(|| "blob:none".to_owned()))))
        .collect()
}

/// The promisor remote of `url` in `config`: its filter, if the section is there.
fn promisor_filter(config: &str, url: &str) -> Option<String> {
    promisor_remotes(config)
        .into_iter()
        .find_map(|(remote, filter)| (remote == url).then_some(filter))
}

/// `config` with the promisor remote of `url` and its filter added.
fn with_promisor(config: Option<&[u8]>, url: &str, filter: &str) -> Vec<u8> {
    let mut out = match config {
        Some(bytes) => bytes.to_vec(),
        None => b"[core]\n\trepositoryformatversion = 0\n\tbare = true\n".to_vec(),
    };
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(
        format!(
            "[remote \"{}\"]\n\turl = {url}\n\tpromisor = true\n\tpartialclonefilter = {filter}\n",
            promisor_name(url)
        )
        .as_bytes(),
    );
    out
}

/// `main` → `refs/heads/main`; a full ref name stays.
fn full_ref(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    }
}

impl Operation for Fetch {
    type Output = Fetched;
    type Error = Error;

    fn poll(&mut self, cache: &mut ObjectCache) -> Result<Step<Fetched>, Error> {
        match &mut self.stage {
            FetchStage::Advertise => {
                self.requests += 1;
                Ok(Step::Http(self.remote.request(
                    HttpMethod::Get,
                    "info/refs?service=git-upload-pack",
                    &[("Git-Protocol", "version=2")],
                    Vec::new(),
                    MAX_MESSAGE_BYTES,
                )))
            }
            FetchStage::LsRefs => {
                let prefixes = if self.request.refs.is_empty() {
                    vec!["refs/heads/".into(), "refs/tags/".into()]
                } else {
                    self.request.refs.iter().map(|r| full_ref(r).into()).collect()
                };
                let ls = v2::LsRefs {
                    symrefs: true,
                    peel: true,
                    unborn: false,
                    prefixes,
                };
                let mut body = Vec::new();
                v2::Request::new(v2::Command::LsRefs(ls)).write_to(&mut body)?;
                Ok(self.upload_pack(body, MAX_MESSAGE_BYTES))
            }
            FetchStage::Local(list) => match list.poll(cache)? {
                Step::Done(refs) => {
                    self.local = refs;
                    // Up to date: nothing to fetch, unless a depth asks to deepen.
                    if self.updates().is_empty() && self.request.depth.is_none() {
                        return Ok(self.done());
                    }
                    self.stage = FetchStage::Files;
                    Ok(Step::Read(vec![receive::SHALLOW.to_owned(), CONFIG.to_owned()]))
                }
                step => Ok(step.map(|_| unreachable!("only a step other than Done is passed on"))),
            },
            FetchStage::Files if self.config_attempts > 0 => {
                Ok(Step::Read(vec![receive::SHALLOW.to_owned(), CONFIG.to_owned()]))
            }
            FetchStage::Files => Err(Misuse("poll called before the files were read").into()),
            FetchStage::Ask => self.fetch_request(),
            FetchStage::Config(swap) => Ok(Step::Swap(swap.clone())),
            FetchStage::Fetch => Err(Misuse("poll called before the fetch was answered").into()),
            FetchStage::Store(receive) => match receive.poll(cache)? {
                Step::Done(pushed) => {
                    if let Err(reason) = &pushed.unpack {
                        return Err(Error::Remote(format!("the fetched pack is refused: {reason}")));
                    }
                    if let Some((name, Err(reason))) = pushed.refs.iter().find(|(_, outcome)| outcome.is_err()) {
                        return Err(Error::Rejected {
                            name: name.clone(),
                            reason: reason.clone(),
                        });
                    }
                    self.objects = pushed.objects;
                    self.boundary = pushed.shallow;
                    Ok(self.done())
                }
                step => Ok(step.map(|_| unreachable!("only a step other than Done is passed on"))),
            },
            FetchStage::Done => Err(Misuse("poll called after Done").into()),
        }
    }

    fn provide(&mut self, cache: &mut ObjectCache, objects: Vec<Option<Vec<u8>>>) -> Result<(), Error> {
        match &mut self.stage {
            FetchStage::Local(list) => list.provide(cache, objects),
            FetchStage::Store(receive) => receive.provide(cache, objects),
            _ => Err(Misuse("provide called without an outstanding Get").into()),
        }
    }

    fn answer(&mut self, cache: &mut ObjectCache, answer: Answer) -> Result<(), Error> {
        match (&mut self.stage, answer) {
            (FetchStage::Advertise, Answer::Http(response)) => {
                check(&response, &self.remote.url, "the remote's capabilities")?;
                let capabilities = v2::parse_advertisement(&response.body, &Limits::default())?;
                if !capabilities.contains("fetch") || !capabilities.contains("ls-refs") {
                    return Err(Error::Remote("the remote offers no ls-refs and fetch".into()));
                }
                if self.request.depth.is_some() && !capabilities.supports("fetch", "shallow") {
                    return Err(Error::Remote("the remote does not serve shallow fetches".into()));
                }
                if self.request.filter.is_some() && !capabilities.supports("fetch", "filter") {
                    return Err(Error::Remote(
                        "the remote does not serve partial fetches (uploadpack.allowFilter is off)".into(),
                    ));
                }
                self.stage = FetchStage::LsRefs;
                Ok(())
            }
            (FetchStage::LsRefs, Answer::Http(response)) => {
                check(&response, &self.remote.url, "the remote's refs")?;
                let refs = v2::parse_refs(&response.body, &Limits::default())?;
                let mut chosen = Vec::new();
                if self.request.refs.is_empty() {
                    for r in &refs {
                        let name = r.name.to_string();
                        if let (Some(id), true) =
                            (r.id, name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
                        {
                            chosen.push((name.clone(), name, id));
                        }
                    }
                    if chosen.is_empty() {
                        return Err(Error::NotFound("the remote has no branches".into()));
                    }
                } else {
                    for wanted in &self.request.refs {
                        let full = full_ref(wanted);
                        let found = refs.iter().find(|r| r.name == full.as_bytes()).and_then(|r| r.id);
                        let id = found.ok_or_else(|| Error::NotFound(format!("the remote has no ref {full}")))?;
                        let local = match &self.request.into {
                            Some(into) => format!("refs/heads/{into}"),
                            None => full.clone(),
                        };
                        chosen.push((full, local, id));
                    }
                }
                self.chosen = chosen;
                self.stage = FetchStage::Local(super::refs::ListRefs::new(&self.request.repo)?);
                Ok(())
            }
            (FetchStage::Local(list), answer) => list.answer(cache, answer),
            (FetchStage::Files, Answer::Read(files)) => {
                let [shallow, config]: [Option<Vec<u8>>; 2] = files
                    .try_into()
                    .map_err(|_| Misuse("a read of two files answers two"))?;
                self.shallows = match &shallow {
                    Some(bytes) => parse_ids(bytes, cache.hash_kind())?,
                    None => Vec::new(),
                };
                let recorded = config
                    .as_deref()
                    .and_then(|bytes| promisor_filter(&String::from_utf8_lossy(bytes), &self.remote.url));
                match (&self.filter, recorded) {
                    // A partial clone of this remote: its fetches keep the filter.
                    (None, Some(spec)) => self.filter = Some((parse_filter(&spec)?, spec)),
                    (Some((_, spec)), None) => {
                        self.stage = FetchStage::Config(crate::step::Swap {
                            key: CONFIG.to_owned(),
                            new: Some(with_promisor(config.as_deref(), &self.remote.url, spec)),
                            expected: config,
                        });
                        return Ok(());
                    }
                    _ => {}
                }
                self.stage = FetchStage::Ask;
                Ok(())
            }
            (FetchStage::Config(_), Answer::Swapped(replaced)) => {
                // Lost to another writer of `config`: read it again.
                self.stage = if replaced { FetchStage::Ask } else { FetchStage::Files };
                if !replaced {
                    self.config_attempts += 1;
                    if self.config_attempts > 16 {
                        return Err(Error::Refused(
                            "the store's config kept changing; nothing was fetched".into(),
                        ));
                    }
                }
                Ok(())
            }
            (FetchStage::Fetch, Answer::Http(response)) => {
                check(&response, &self.remote.url, "the fetch")?;
                let response = match v2::FetchResponse::from_bytes(&response.body, false, &Limits::default())? {
                    v2::FetchResponse::Pack(pack) => pack,
                    v2::FetchResponse::Acknowledgments { .. } => {
                        return Err(Error::Remote("the remote sent no pack after `done`".into()));
                    }
                };
                let info = response.shallow_info.unwrap_or_default();
                if self.request.depth.is_none() && !info.shallow.is_empty() {
                    return Err(Error::Remote(
                        "the remote cut the history of a fetch that asked for all of it".into(),
                    ));
                }
                self.pack_bytes = response.pack.len();
                // The store's own boundary counts too: the remote may send a commit of it
                // again, still without its parents.
                let own: &[ObjectId] = if self.request.depth.is_some() {
                    &self.shallows
                } else {
                    &[]
                };
                let mut boundary: Vec<ObjectId> = info
                    .shallow
                    .iter()
                    .chain(own)
                    .filter(|id| !info.unshallow.contains(id))
                    .copied()
                    .collect();
                boundary.sort();
                boundary.dedup();
                self.pack = Some((response.pack, boundary));
                self.store()
            }
            (FetchStage::Store(receive), answer) => receive.answer(cache, answer),
            _ => Err(Misuse("the answer does not match the step asked").into()),
        }
    }
}
