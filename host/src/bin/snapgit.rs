//! The `snapgit` command: argument parsing and printing over [`snapgit_host::cli`].

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use bstr::BString;
use clap::{Args, Parser, Subcommand, ValueEnum};
use snapgit_core::{
    commit::{Change, Signature},
    gc::Phase,
    id,
    merge::ConflictPolicy,
    policy::Policy,
    worktree as worktree_core,
};
use snapgit_host::cli::{
    self, CommitArgs, Config, EngineKind, Error, GcProgress, Inputs, Report, Session,
    output::{DiffFormat, ErrorReport},
    worktree::{self, CacheFile, Folder},
};

const EXIT_CODES: &str = "\
Exit status:
  0  success (a commit that changes nothing also succeeds, with created: false)
  1  internal error
  2  invalid input: arguments, names, paths, ids, URLs, credentials, unreadable or excluded files
  3  not found: store, repo, branch, commit or path
  4  conflict: same path changed on both sides, already exists, --expect-head not met
  5  lost the race to other writers after every retry
  6  storage or lock service failed or unreachable
  7  corrupt data in the store
  8  a size or count limit exceeded

Engines: by default snapgit-core runs as the WebAssembly component embedded in this
binary, under wasmtime, sandboxed with a memory limit and a deadline per operation; its
compiled code is kept in --cache-dir (default $XDG_CACHE_HOME/snapgit/wasmtime or
~/.cache/snapgit/wasmtime), so only the first run compiles it. --engine native runs
snapgit-core compiled into the binary; both give the same output. Under the component,
gc's progress counts storage calls (the collection is one call into the component).

Environment: SNAPGIT_STORE, SNAPGIT_REPO, SNAPGIT_BRANCH, SNAPGIT_AUTHOR, SNAPGIT_DATE,
SNAPGIT_REDIS_URL, SNAPGIT_ENGINE, SNAPGIT_CACHE_DIR; for s3:// the usual AWS_* variables (AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP), for gs:// GOOGLE_*, for az://
AZURE_*; SNAPGIT_INSTANCE_CREDENTIALS=1 lets cloud metadata supply credentials.";

/// Git-compatible snapshots of agent memory: commit files to a store any `git` can read.
#[derive(Debug, Parser)]
#[command(name = "snapgit", version, after_long_help = EXIT_CODES)]
struct Cli {
    /// The store: a folder (a bare git repository), file:///abs/path, s3://bucket/prefix,
    /// gs://bucket/prefix, az://container/prefix or memory:
    #[arg(long, global = true, env = "SNAPGIT_STORE", default_value = cli::DEFAULT_STORE)]
    store: String,

    /// The repo in the store (a git namespace)
    #[arg(long, global = true, env = "SNAPGIT_REPO", default_value = cli::DEFAULT_REPO)]
    repo: String,

    /// The branch to commit to, and the ref read when none is given
    #[arg(short, long, global = true, env = "SNAPGIT_BRANCH", default_value = cli::DEFAULT_BRANCH)]
    branch: String,

    /// A Redis server for advisory commit locks (redis://host:port/db); optional
    #[arg(long, global = true, env = "SNAPGIT_REDIS_URL")]
    redis_url: Option<String>,

    /// How long a commit holds its lock (with --redis-url); a busy lock is waited for as long
    #[arg(long, global = true, default_value = "30s", value_parser = duration)]
    lock_ttl: Duration,

    /// Machine output: JSON on stdout, and errors as JSON on stderr
    #[arg(long, global = true)]
    json: bool,

    /// No progress bars
    #[arg(short, long, global = true)]
    quiet: bool,

    /// What runs snapgit-core: the embedded WebAssembly component under wasmtime, or core
    /// compiled into this binary
    #[arg(long, global = true, env = "SNAPGIT_ENGINE", value_enum, default_value_t = Engine::default())]
    engine: Engine,

    /// Where the component's compiled code is kept between runs (empty: nowhere, compile
    /// every time) [default: $XDG_CACHE_HOME/snapgit/wasmtime or ~/.cache/snapgit/wasmtime]
    #[arg(long, global = true, env = "SNAPGIT_CACHE_DIR", value_parser = clap::value_parser!(std::ffi::OsString))]
    cache_dir: Option<std::ffi::OsString>,

    #[command(subcommand)]
    command: Command,
}

/// How a push or fetch authenticates to the remote.
#[derive(Debug, Args)]
struct RemoteAuth {
    /// A token sent as `Authorization: Bearer <token>`
    #[arg(long, env = "SNAPGIT_REMOTE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// An extra header, "Name: value" (repeatable)
    #[arg(long = "header", value_name = "HEADER")]
    headers: Vec<String>,
}

impl RemoteAuth {
    fn remote(&self, url: &str) -> Result<snapgit_core::remote::client::Remote, Error> {
        let mut headers = Vec::new();
        for header in &self.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| Error::invalid(format!("the header {header:?} is not \"Name: value\"")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        Ok(snapgit_core::remote::client::Remote {
            url: url.to_owned(),
            headers,
        })
    }
}

/// Who and when, for commands that write commits.
#[derive(Debug, Args)]
struct Who {
    // clap prints this comment as the option's help, where `<email>` is meant literally.
    #[allow(rustdoc::invalid_html_tags)]
    /// The author and committer, "Name <email>"
    #[arg(long, env = "SNAPGIT_AUTHOR", default_value = "snapgit <snapgit@localhost>")]
    author: String,

    /// The commit time in seconds since the Unix epoch (default: now)
    #[arg(long, env = "SNAPGIT_DATE")]
    date: Option<i64>,
}

impl Who {
    fn signature(&self) -> Result<Signature, Error> {
        cli::parse_author(&self.author, self.date.unwrap_or_else(cli::now_seconds))
    }
}

/// Files and folders left out of what is read from disk.
#[derive(Debug, Default, Args)]
struct Excludes {
    /// Leave out files matching this gitignore-style pattern (repeatable)
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Leave out what the patterns of this file match (gitignore syntax, relative to the
    /// root folder: a `.gitignore` at the root, for example; repeatable). Every
    /// `.snapgitignore` is always read: the root folder's first, one in a subfolder below
    /// it as a `.gitignore` is
    #[arg(long, value_name = "FILE")]
    exclude_from: Vec<PathBuf>,
    /// Leave out what checkpoint tools do: dependency and build folders, caches, `.env*`,
    /// archives, audio and video (`snapgit_core::worktree::CHECKPOINT_EXCLUDES`)
    #[arg(long)]
    checkpoint_excludes: bool,
    /// Leave out what the folder's `.gitignore` files do, as git reads them: the one in
    /// each folder applies below that folder, a deeper one's patterns winning (over the
    /// other excludes too)
    #[arg(long)]
    gitignore: bool,
    /// Leave out files larger than this (1048576, 10m, 1GiB); default 100m, the largest
    /// file a commit may write. A symlink is never left out for its size
    #[arg(long, value_name = "SIZE", value_parser = size)]
    max_file_size: Option<u64>,
}

impl Excludes {
    /// The policy of these excludes for the folder `root`: the defaults first, then the
    /// files' patterns, then `--exclude`; a later pattern wins, as in a `.gitignore`.
    /// A file's patterns say which file and line leave a path out.
    fn policy(&self, root: &std::path::Path) -> Result<Policy, Error> {
        let read = |file: &std::path::Path| {
            std::fs::read_to_string(file).map_err(|source| Error::Unreadable {
                path: file.to_owned(),
                source,
            })
        };
        let own = root.join(".snapgitignore");
        let own = if own.is_file() { Some(read(&own)?) } else { None };
        let mut files = Vec::new();
        for file in &self.exclude_from {
            files.push((file.display().to_string(), read(file)?));
        }
        worktree_core::ScanExcludes {
            checkpoint: self.checkpoint_excludes,
            snapgitignore: own.as_deref(),
            files: files
                .iter()
                .map(|(shown, text)| (shown.as_str(), text.as_str()))
                .collect(),
            patterns: self.exclude.clone(),
            max_file_bytes: self.max_file_size,
        }
        .policy()
        .map_err(|err| Error::invalid(err.to_string()))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the store (if missing) and its repo with an empty first commit
    Init {
        #[command(flatten)]
        who: Who,
    },
    /// Create, list or delete repos in the store
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Commit files (from paths or stdin), deletes and renames to a branch
    Commit(CommitCommand),
    /// History, newest first
    Log {
        /// Where to start: a branch, tag or (abbreviated) commit id, with ~N or ^N (default: --branch)
        reference: Option<String>,
        /// Only commits that changed this file or folder
        #[arg(long)]
        path: Option<String>,
        /// The most commits to show
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Continue where an earlier page stopped (its `next`)
        #[arg(long)]
        cursor: Option<String>,
        /// Follow every parent, not only the first
        #[arg(long)]
        all_parents: bool,
        /// One line per commit
        #[arg(long)]
        oneline: bool,
        /// With --path naming a file: how the file changed in each commit, lines added and
        /// removed, as `git log --numstat` prints them (the file's history)
        #[arg(long, requires = "path", conflicts_with = "all_parents")]
        numstat: bool,
    },
    /// A commit's metadata and the files it changed
    Show {
        /// A branch, tag or (abbreviated) commit id, with ~N or ^N (default: --branch)
        reference: Option<String>,
        /// Also print the patch
        #[arg(short, long)]
        patch: bool,
    },
    /// Print a file as it is at a ref
    Cat {
        /// The file's path in the repo (with -r: a folder, the root if absent)
        #[arg(required_unless_present = "recursive")]
        path: Option<String>,
        /// A branch, tag or (abbreviated) commit id, with ~N or ^N (default: --branch)
        #[arg(long = "ref")]
        at: Option<String>,
        /// Every file below the folder, each after a `==> path <==` line
        #[arg(short, long)]
        recursive: bool,
    },
    /// List a folder at a ref, without reading file contents
    Ls {
        /// The folder (default: the root)
        path: Option<String>,
        /// A branch, tag or (abbreviated) commit id, with ~N or ^N (default: --branch)
        #[arg(long = "ref")]
        at: Option<String>,
        /// List every file below the folder
        #[arg(short, long)]
        recursive: bool,
    },
    /// Compare two commits (default: the head of --branch against its parent), or a
    /// commit with a folder (--worktree)
    Diff {
        /// The old side (default: the first parent of the new side; with --worktree: --branch)
        from: Option<String>,
        /// The new side (default: --branch)
        #[arg(conflicts_with = "worktree")]
        to: Option<String>,
        /// Compare the old side with this folder as it is now, as `git diff <commit>` in a
        /// work tree does (files whose stat is unchanged since the last snapshot are not read)
        #[arg(long, value_name = "DIR")]
        worktree: Option<PathBuf>,
        /// With --worktree: what the folder's snapshots leave out
        #[command(flatten)]
        excludes: Excludes,
        /// Only this file or folder
        #[arg(long)]
        path: Option<String>,
        /// Files with a +/- graph and a summary
        #[arg(long)]
        stat: bool,
        /// Lines added and removed per file, tab-separated
        #[arg(long)]
        numstat: bool,
        /// Status letter and path per file
        #[arg(long)]
        name_status: bool,
        /// The unified patch (the default when no other format is asked for)
        #[arg(short, long)]
        patch: bool,
    },
    /// Bring back a commit's tree (or one path of it) as a new commit on --branch
    Restore {
        /// The commit to restore: a branch, tag or (abbreviated) commit id, with ~N or ^N
        target: String,
        /// Only this file or folder
        path: Option<String>,
        /// The message (default: one naming the path and the commit)
        #[arg(short, long)]
        message: Option<String>,
        /// Fail (exit 4) unless the branch is at this commit
        #[arg(long)]
        expect_head: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Roll a folder back to a commit (or one path of it): first a snapshot of the folder
    /// on --branch (the undo point), then the commit's files written into the folder and
    /// tracked files it lacks deleted; excluded and untracked files are never touched
    Rollback {
        /// The commit to bring back: a branch, tag or (abbreviated) commit id, with ~N or ^N
        target: String,
        /// Only this file or folder
        path: Option<String>,
        /// The folder (its paths are the repo's paths)
        #[arg(long, value_name = "DIR", default_value = ".")]
        worktree: PathBuf,
        /// What the snapshots of the folder leave out (the same as theirs)
        #[command(flatten)]
        excludes: Excludes,
        /// The undo snapshot's message (default: one naming the target)
        #[arg(short, long)]
        message: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// List, create or delete branches
    Branch {
        #[command(subcommand)]
        action: Option<BranchCommand>,
    },
    /// Keep only the newest commits of --branch; older history is rewritten away
    Prune {
        /// Keep this many commits, counting the head
        #[arg(long)]
        keep_last: Option<usize>,
        /// Keep the commits of this last period (90s, 15m, 12h, 7d, 2w)
        #[arg(long, value_parser = duration)]
        keep_within: Option<Duration>,
    },
    /// Delete objects no ref of any repo reaches, once older than the grace period
    Gc {
        /// How old an unreachable object must be to go; longer than any commit takes
        #[arg(long, default_value = "1h", value_parser = duration)]
        grace: Duration,
    },
    /// Keep the whole store under a size: the oldest history is pruned first, one commit
    /// per repo in turn, until what the refs reach fits; then `compact --drop-unreachable`
    /// and `gc` free the space
    Cap {
        /// The most bytes of objects the refs may reach (1048576, 500m, 2GiB, 500MB)
        #[arg(long, value_parser = size)]
        max_size: u64,
        /// Commits every branch keeps whatever the cap, counting the head
        #[arg(long, default_value_t = 1)]
        keep_last: usize,
    },
    /// Pack loose objects with deltas and merge small packs; copies go once their pack
    /// is older than the grace period
    Compact {
        /// How long a new pack must exist before the loose copies and packs it holds
        /// are deleted (readers that listed the store earlier still find them)
        #[arg(long, default_value = "1h", value_parser = duration)]
        grace: Duration,
        /// Only when the store holds at least this many loose objects (or --min-packs
        /// packs); one listing decides, cheap enough after every commit
        #[arg(long)]
        min_loose: Option<u64>,
        /// Only when the store holds at least this many packs (or --min-loose loose objects)
        #[arg(long)]
        min_packs: Option<u64>,
        /// Give back the space of what no ref reaches (what prune, branch and repo
        /// deletion left) once packed: objects nothing reaches, in packs older than the
        /// grace period, are left out of a new pack; the old packs go at a later run,
        /// once that pack is older than the grace period
        #[arg(long)]
        drop_unreachable: bool,
        /// How many objects each is tried against for a delta (0: no deltas; default 250,
        /// git's --aggressive); smaller is faster and packs less tightly
        #[arg(long)]
        window: Option<usize>,
        /// The longest delta chain (default 50)
        #[arg(long)]
        depth: Option<usize>,
        /// Each pack left holds at least this many times the objects of the smaller ones
        /// (default 2)
        #[arg(long)]
        factor: Option<u64>,
    },
    /// Push --branch to a git remote (http:// or https://), fast-forward only unless --force
    Push {
        // clap prints this comment as the option's help, where the URL is meant as text.
        #[allow(rustdoc::bare_urls)]
        /// The remote's URL, e.g. https://git.example.com/agent.git (credentials in it
        /// are sent as basic auth)
        url: String,
        /// The remote's ref to update (default: the branch of the same name)
        #[arg(long = "to", value_name = "REF")]
        remote_ref: Option<String>,
        /// Push even if the remote's branch is not in this branch's history
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        auth: RemoteAuth,
    },
    /// Fetch branches or tags of a git remote into the repo (each into the ref of the same
    /// name), fast-forward only unless --force
    Fetch {
        /// The remote's URL
        url: String,
        /// Branches (main) or refs (refs/tags/v1) to fetch; none: every branch and tag
        refs: Vec<String>,
        /// With one ref: the branch it goes to
        #[arg(long, value_name = "BRANCH")]
        into: Option<String>,
        /// Move a branch even when the fetched commit does not descend from it
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        cut: CutArgs,
        #[command(flatten)]
        auth: RemoteAuth,
    },
    /// Create the repo (--repo) from every branch and tag of a git remote; the store is
    /// created if missing
    Import {
        /// The remote's URL
        url: String,
        #[command(flatten)]
        cut: CutArgs,
        #[command(flatten)]
        auth: RemoteAuth,
    },
    // clap prints this comment as the command's help, where `<listen>` is meant literally.
    #[allow(rustdoc::invalid_html_tags)]
    /// Serve every repo of the store as a git remote over HTTP: `git clone`, `fetch` and
    /// `push` at http://<listen>/<repo>.git (until Ctrl-C or SIGTERM; requests in flight
    /// finish first)
    Serve {
        /// The address to listen on; without tokens, only a loopback address is allowed
        #[arg(long, env = "SNAPGIT_LISTEN", default_value = snapgit_host::serve::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// A JSON file of tokens: {"tokens": [{"token": "…", "repos": ["agent-*"],
        /// "access": "read" | "write"}]}; also SNAPGIT_TOKENS (the JSON itself). Sent as
        /// `Authorization: Bearer <token>` or as basic auth's password. Without tokens
        /// everyone may read and write (a development server)
        #[arg(long, env = "SNAPGIT_TOKENS_FILE")]
        tokens: Option<PathBuf>,
        /// Accept pushes that move a branch to a commit not descending from it, or move a
        /// tag (`git push --force`); refused by default
        #[arg(long)]
        allow_force: bool,
        /// The largest request accepted (a push's pack), in bytes
        #[arg(long, default_value_t = snapgit_host::serve::DEFAULT_MAX_REQUEST_BYTES)]
        max_request_bytes: usize,
        /// Refuse pushes that add a file larger than this many bytes
        #[arg(long, value_name = "BYTES")]
        max_file_size: Option<u64>,
        /// Refuse pushes that add a path this gitignore-style pattern matches (repeatable)
        #[arg(long, value_name = "PATTERN")]
        exclude: Vec<String>,
        /// The longest a JSON API request may take, in seconds, before it is answered 503
        #[arg(long, value_name = "SECONDS", default_value_t = snapgit_host::serve::DEFAULT_REQUEST_TIMEOUT.as_secs())]
        request_timeout: u64,
        /// Log one line per request to stderr: `text`, or `json` for log collectors
        #[arg(long, env = "SNAPGIT_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Serve the repo (--repo) as an MCP server on stdin and stdout, for an agent's
    /// memory: tools commit, read_file, list_files, log, diff and restore, on --branch.
    /// A folder store is created if missing; a repo that does not exist is created by the
    /// first commit. Runs until the client closes stdin
    Mcp {
        #[command(flatten)]
        who: Who,
    },
    /// The store's footprint: objects and bytes, per repo, and unreachable
    Status,
}

#[derive(Debug, Subcommand)]
enum RepoCommand {
    /// Create a repo, with files as its first commit
    Create {
        /// The repo's name
        name: String,
        /// Files and folders for the first commit
        paths: Vec<PathBuf>,
        /// Paths in the repo are relative to this folder
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// The first commit's message
        #[arg(short, long, default_value = "create")]
        message: String,
        #[command(flatten)]
        who: Who,
    },
    /// List the repos
    List,
    /// Delete a repo's refs (its objects go at the next gc)
    Delete {
        /// The repo's name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum BranchCommand {
    /// List branches with their heads (the default)
    List,
    /// Create a branch
    Create {
        /// The new branch
        name: String,
        /// Where it starts: a branch, tag or (abbreviated) commit id, with ~N or ^N (default: --branch)
        #[arg(long)]
        from: Option<String>,
    },
    /// Delete a branch
    Delete {
        /// The branch
        name: String,
    },
}

#[derive(Debug, Args)]
struct CommitCommand {
    /// Files and folders to commit (a folder brings every file below it)
    paths: Vec<PathBuf>,
    /// The message
    #[arg(short, long)]
    message: String,
    /// Read a file's content from stdin and commit it at this path
    #[arg(long, value_name = "PATH")]
    stdin: Option<String>,
    /// Delete this file or folder (repeatable)
    #[arg(long, value_name = "PATH")]
    delete: Vec<String>,
    /// Move a file or folder (repeatable)
    #[arg(long, num_args = 2, value_names = ["FROM", "TO"])]
    rename: Vec<String>,
    /// Paths in the repo are relative to this folder
    #[arg(long, default_value = ".")]
    root: PathBuf,
    #[command(flatten)]
    excludes: Excludes,
    /// Make each folder named match the disk: delete files the branch has below it that
    /// are gone locally
    #[arg(long)]
    sync: bool,
    /// Fail (exit 4) unless the branch is at this commit, instead of replaying onto it
    #[arg(long)]
    expect_head: Option<String>,
    /// When another writer changed the same path meanwhile
    #[arg(long, value_enum, default_value_t = OnConflict::Fail)]
    on_conflict: OnConflict,
    /// Commit even when nothing changes
    #[arg(long)]
    allow_empty: bool,
    /// Attempts before giving up the race (exit 5); given up too after 20 s of waiting
    /// between attempts
    #[arg(long, default_value_t = snapgit_core::repo::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// snapgit-core as a WebAssembly component under wasmtime (sandboxed)
    Component,
    /// snapgit-core compiled into this binary
    Native,
}

impl Default for Engine {
    fn default() -> Self {
        match EngineKind::DEFAULT {
            EngineKind::Component => Engine::Component,
            EngineKind::Native => Engine::Native,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnConflict {
    /// Fail and report the path (exit 4); nothing is written
    Fail,
    /// Our change wins
    Ours,
    /// Their version stays
    Theirs,
}

fn size(text: &str) -> Result<u64, String> {
    cli::parse_size(text).map_err(|err| err.to_string())
}

fn duration(text: &str) -> Result<Duration, String> {
    cli::parse_duration(text).map_err(|err| err.to_string())
}

// A scan makes and drops a few values per file of a folder: mimalloc does that with
// less time and fewer page faults than the system's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Cli::parse();
    let json = args.json;
    // A server answers many clients at once, on every core; a command runs one thing.
    let runtime = match args.command {
        Command::Serve { .. } => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(err) => Err(Error::invalid(format!("cannot start the async runtime: {err}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = err.code();
            let message = err.message();
            let mut stderr = io::stderr().lock();
            let _ = if json {
                let report = ErrorReport {
                    code: code.as_str(),
                    exit: snapgit_host::cli::exit_code(code),
                    message,
                };
                writeln!(stderr, "{}", serde_json::to_string(&report).unwrap_or_default())
            } else {
                writeln!(stderr, "error: {message}")
            };
            ExitCode::from(snapgit_host::cli::exit_code(code))
        }
    }
}

fn config(args: &Cli) -> Config {
    let mut config = Config::new(&args.store);
    config.repo = args.repo.clone();
    config.redis_url = args.redis_url.clone().filter(|url| !url.is_empty());
    config.lock_ttl = args.lock_ttl;
    config.engine = match args.engine {
        Engine::Component => EngineKind::Component,
        Engine::Native => EngineKind::Native,
    };
    if let Some(dir) = &args.cache_dir {
        config.cache_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    config
}

fn object_id(text: &str) -> Result<snapgit_core::ObjectId, Error> {
    Ok(id::parse(snapgit_core::HashKind::Sha1, text)?)
}

async fn run(args: Cli) -> Result<(), Error> {
    let config = config(&args);
    let json = args.json;
    let quiet = args.quiet;
    let branch = args.branch.clone();
    if let Command::Serve {
        listen,
        tokens,
        allow_force,
        max_request_bytes,
        max_file_size,
        exclude,
        request_timeout,
        log_format,
    } = &args.command
    {
        let mut policy = Policy::new()
            .exclude(exclude.iter().cloned())
            .map_err(|err| Error::invalid(err.to_string()))?;
        policy.max_file_bytes = *max_file_size;
        let options = ServeOptions {
            listen: *listen,
            tokens_file: tokens.clone(),
            allow_force: *allow_force,
            max_request_bytes: *max_request_bytes,
            policy,
            request_timeout_secs: *request_timeout,
            log_format: log_format.clone(),
        };
        return serve(&config, options, quiet).await;
    }
    if let Command::Import { url, cut, auth } = &args.command {
        let mut session = Session::create(&config).await?;
        let remote = auth.remote(url)?;
        let work = session.fetch(remote, Vec::new(), None, false, cut.cut());
        return emit(&transferring("import", quiet, work).await?, json);
    }
    if let Command::Mcp { who } = &args.command {
        let options = snapgit_host::mcp::Options {
            date: who.date,
            ..snapgit_host::mcp::Options::new(&branch, &who.author)
        };
        return snapgit_host::mcp::serve_stdio(&config, options).await;
    }
    if let Command::Init { who } = &args.command {
        let (_, report) = Session::init(&config, &branch, who.signature()?).await?;
        return emit(&report, json);
    }
    // Local files are read before the store is opened: a bad path fails at once.
    let command = match args.command {
        Command::Commit(commit) if is_snapshot(&commit) => {
            let root = commit.root.clone();
            let dir = commit.paths[0].clone();
            let folder = folder(&root, &commit.excludes, &config, quiet)?;
            let scope = cli::Inputs::repo_path_of(folder.root(), &root.join(&dir), &dir)?;
            let args = CommitArgs {
                expect_head: commit.expect_head.as_deref().map(object_id).transpose()?,
                on_conflict: on_conflict(commit.on_conflict),
                allow_empty: commit.allow_empty,
                max_attempts: commit.max_attempts,
                ..CommitArgs::new(&branch, commit.who.signature()?, commit.message)
            };
            Prepared::Snapshot { folder, scope, args }
        }
        Command::Commit(commit) => Prepared::Commit(commit_args(commit, &branch, &config)?),
        Command::Repo(RepoCommand::Create {
            name,
            paths,
            root,
            message,
            who,
        }) => {
            let author = who.signature()?;
            // The folders' `.snapgitignore` files count, as in a commit.
            let policy = Excludes::default().policy(&root)?;
            let collected = Inputs {
                root,
                paths,
                skip: store_folder(&config),
                policy,
                gitignore: false,
            }
            .collect()?;
            Prepared::CreateRepo {
                name,
                files: collected.changes,
                author,
                message,
            }
        }
        other => Prepared::Other(other),
    };
    let mut session = Session::open(&config).await?;
    let command = match command {
        Prepared::Commit(args) => return emit(&session.commit(args).await?, json),
        Prepared::Snapshot { folder, scope, args } => {
            let cache = stat_cache(&folder, &config);
            let snapshot = session.snapshot(&folder, scope.as_ref(), &cache, args).await;
            done(&folder);
            return emit(&snapshot?.0, json);
        }
        Prepared::CreateRepo {
            name,
            files,
            author,
            message,
        } => {
            let report = session.create_repo(&name, &branch, files, author, &message).await?;
            return emit(&report, json);
        }
        Prepared::Other(command) => command,
    };
    match command {
        Command::Init { .. } => Ok(()),
        Command::Repo(RepoCommand::Create { .. }) => Ok(()),
        Command::Repo(RepoCommand::List) => emit(&session.list_repos().await?, json),
        Command::Repo(RepoCommand::Delete { name }) => emit(&session.delete_repo(&name).await?, json),
        Command::Commit(_) => Ok(()),
        Command::Log {
            reference,
            path,
            limit,
            cursor,
            all_parents,
            oneline,
            numstat,
        } => {
            let start = session.resolve(reference.as_deref().unwrap_or(&branch)).await?;
            let mut report = match (numstat, path) {
                (true, Some(path)) => session.file_log(&start, BString::from(path), limit, cursor).await?,
                (_, path) => {
                    session
                        .log(&start, path.map(BString::from), limit, cursor, all_parents)
                        .await?
                }
            };
            report.oneline = oneline;
            emit(&report, json)?;
            if let (false, Some(next)) = (json, &report.next) {
                eprintln!("(more: --cursor {next})");
            }
            Ok(())
        }
        Command::Show { reference, patch } => {
            let commit = session.resolve(reference.as_deref().unwrap_or(&branch)).await?;
            emit(&session.show(&commit, patch).await?, json)
        }
        Command::Cat { path, at, recursive } => {
            let commit = session.resolve(at.as_deref().unwrap_or(&branch)).await?;
            let path = path.unwrap_or_default();
            if recursive {
                emit(&session.cat_all(&commit, &path).await?, json)
            } else {
                emit(&session.cat(&commit, &path).await?, json)
            }
        }
        Command::Ls { path, at, recursive } => {
            let commit = session.resolve(at.as_deref().unwrap_or(&branch)).await?;
            emit(
                &session.ls(&commit, path.as_deref().unwrap_or(""), recursive).await?,
                json,
            )
        }
        Command::Diff {
            from,
            to,
            worktree,
            excludes,
            path,
            stat,
            numstat,
            name_status,
            patch,
        } => {
            let mut format = DiffFormat {
                name_status,
                numstat,
                stat,
                patch,
            };
            if format == DiffFormat::default() {
                format.patch = true;
            }
            if let Some(dir) = worktree {
                let folder = folder(&dir, &excludes, &config, quiet)?;
                let cache = stat_cache(&folder, &config);
                let from = session.resolve(from.as_deref().unwrap_or(&branch)).await?;
                let report = session
                    .diff_worktree(&from, &folder, &cache, path.map(BString::from), format)
                    .await;
                done(&folder);
                return emit(&report?, json);
            }
            let from = match from {
                Some(from) => Some(session.resolve(&from).await?),
                None => None,
            };
            let to = session.resolve(to.as_deref().unwrap_or(&branch)).await?;
            emit(&session.diff(from, &to, path.map(BString::from), format).await?, json)
        }
        Command::Restore {
            target,
            path,
            message,
            expect_head,
            who,
        } => {
            let author = who.signature()?;
            let expect_head = expect_head.as_deref().map(object_id).transpose()?;
            let report = session
                .restore(&branch, &target, path.map(BString::from), author, message, expect_head)
                .await?;
            emit(&report, json)
        }
        Command::Rollback {
            target,
            path,
            worktree,
            excludes,
            message,
            who,
        } => {
            let folder = folder(&worktree, &excludes, &config, quiet)?;
            let cache = stat_cache(&folder, &config);
            let target_id = session.resolve(&target).await?;
            let message = message.unwrap_or_else(|| format!("Checkpoint before rolling back to {target}"));
            let args = CommitArgs::new(&branch, who.signature()?, message);
            let bar = file_bar(quiet);
            // Ctrl-C stops the rollback between two files, and the report says which were done.
            let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = cancel.clone();
            let watcher = tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            });
            let progress = bar.clone();
            let report = session
                .rollback(
                    &folder,
                    &cache,
                    cli::Rollback {
                        target: target_id,
                        path: path.map(BString::from),
                        undo: args,
                        cancel,
                    },
                    move |_| progress.inc(1),
                )
                .await;
            watcher.abort();
            bar.finish_and_clear();
            done(&folder);
            let report = report?;
            emit(&report, json)?;
            if !report.complete {
                // Interrupted, as a shell reports it.
                std::process::exit(130);
            }
            Ok(())
        }
        Command::Branch { action } => match action.unwrap_or(BranchCommand::List) {
            BranchCommand::List => emit(&session.list_branches().await?, json),
            BranchCommand::Create { name, from } => emit(
                &session.create_branch(&name, from.as_deref().unwrap_or(&branch)).await?,
                json,
            ),
            BranchCommand::Delete { name } => emit(&session.delete_branch(&name).await?, json),
        },
        Command::Prune { keep_last, keep_within } => {
            if keep_last.is_none() && keep_within.is_none() {
                return Err(Error::invalid("prune needs --keep-last, --keep-within or both"));
            }
            emit(&session.prune(&branch, keep_last, keep_within).await?, json)
        }
        Command::Gc { grace } => {
            let bar = progress_bar(args.quiet);
            let report = session.gc(grace, |progress| show_progress(&bar, progress)).await;
            bar.finish_and_clear();
            emit(&report?, json)
        }
        Command::Cap { max_size, keep_last } => {
            let bar = progress_bar(args.quiet);
            let report = session
                .cap(max_size, keep_last, |progress| show_progress(&bar, progress))
                .await;
            bar.finish_and_clear();
            emit(&report?, json)
        }
        Command::Compact {
            grace,
            min_loose,
            min_packs,
            drop_unreachable,
            window,
            depth,
            factor,
        } => {
            let bar = progress_bar(args.quiet);
            let tune = |options: &mut snapgit_core::gc::CompactOptions| {
                (options.min_loose, options.min_packs) = (min_loose, min_packs);
                options.drop_unreachable = drop_unreachable;
                options.window = window.unwrap_or(options.window);
                options.depth = depth.unwrap_or(options.depth);
                options.factor = factor.unwrap_or(options.factor);
            };
            let report = session
                .compact(grace, tune, |progress| show_progress(&bar, progress))
                .await;
            bar.finish_and_clear();
            emit(&report?, json)
        }
        Command::Status => emit(&session.status().await?, json),
        Command::Serve { .. } | Command::Import { .. } | Command::Mcp { .. } => Ok(()),
        Command::Push {
            url,
            remote_ref,
            force,
            auth,
        } => {
            let work = session.push(auth.remote(&url)?, &branch, remote_ref, force);
            emit(&transferring("push", args.quiet, work).await?, json)
        }
        Command::Fetch {
            url,
            refs,
            into,
            force,
            cut,
            auth,
        } => {
            let work = session.fetch(auth.remote(&url)?, refs, into, force, cut.cut());
            emit(&transferring("fetch", args.quiet, work).await?, json)
        }
    }
}

/// `--depth` and `--filter` of `fetch` and `import`.
#[derive(Debug, Clone, clap::Args)]
struct CutArgs {
    /// A shallow fetch: only this many commits of each ref's history (the store's
    /// `shallow` file lists the commits kept without parents)
    #[arg(long, value_name = "N")]
    depth: Option<u32>,
    /// A partial fetch: what the remote leaves out, `blob:none` or `blob:limit=<n>[kmg]`
    /// (the store's config then names the remote a promisor remote)
    #[arg(long, value_name = "SPEC")]
    filter: Option<String>,
}

impl CutArgs {
    fn cut(&self) -> snapgit_host::cli::Cut {
        snapgit_host::cli::Cut {
            depth: self.depth,
            filter: self.filter.clone(),
        }
    }
}

/// What `snapgit serve` was asked for.
struct ServeOptions {
    listen: std::net::SocketAddr,
    tokens_file: Option<PathBuf>,
    allow_force: bool,
    max_request_bytes: usize,
    policy: Policy,
    request_timeout_secs: u64,
    log_format: String,
}

/// One log line per request to stderr, at `RUST_LOG`'s level (default `info`), as text or
/// JSON.
fn logs(format: String) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("snapgit=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A subscriber set already (a second server in one process) keeps its own.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}

/// `snapgit serve`: the store's repos as git remotes, until Ctrl-C or SIGTERM.
async fn serve(config: &Config, options: ServeOptions, quiet: bool) -> Result<(), Error> {
    let ServeOptions {
        listen,
        tokens_file,
        allow_force,
        max_request_bytes,
        policy,
        request_timeout_secs,
        log_format,
    } = options;
    use snapgit_host::serve;
    let tokens = match (
        tokens_file,
        std::env::var("SNAPGIT_TOKENS").ok().filter(|t| !t.is_empty()),
    ) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Unreadable {
                path: path.clone(),
                source,
            })?;
            serve::Tokens::from_json(&text, &path.display().to_string())
        }
        (None, Some(json)) => serve::Tokens::from_json(&json, "SNAPGIT_TOKENS"),
        (None, None) => Ok(serve::Tokens::default()),
    }
    .map_err(|err| Error::invalid(err.to_string()))?;
    let storage = cli::open_store(config)?;
    let locks = cli::open_locks(config, storage.as_ref()).await?;
    let serve_config = serve::Config {
        tokens,
        allow_non_fast_forward: allow_force,
        max_request_bytes,
        policy,
        lock_ttl_ms: Some(u64::try_from(config.lock_ttl.as_millis()).unwrap_or(u64::MAX).max(1)),
        request_timeout: std::time::Duration::from_secs(request_timeout_secs),
        ..serve::Config::default()
    };
    logs(log_format);
    let shutdown = async {
        let terminate = async {
            #[cfg(unix)]
            if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                signal.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    };
    let location = storage.location();
    serve::serve(storage, locks, serve_config, listen, shutdown, |addr| {
        if !quiet {
            eprintln!("snapgit: serving {location} at http://{addr}/<repo>.git");
            eprintln!("snapgit: JSON API at http://{addr}/v1 (its OpenAPI document at /openapi.json)");
        }
    })
    .await
    .map_err(|err| Error::invalid(err.to_string()))
}

/// A command whose local input is read.
enum Prepared {
    Commit(CommitArgs),
    Snapshot {
        folder: Folder,
        scope: BString,
        args: CommitArgs,
    },
    CreateRepo {
        name: String,
        files: Vec<Change>,
        author: Signature,
        message: String,
    },
    Other(Command),
}

/// The folder of a local store, never read as files to commit.
fn store_folder(config: &Config) -> Vec<PathBuf> {
    cli::local_folder(&config.store).ok().flatten().into_iter().collect()
}

/// `commit DIR --sync` and nothing else: a snapshot of the folder, through the stat cache.
fn is_snapshot(command: &CommitCommand) -> bool {
    command.sync
        && command.paths.len() == 1
        && command.stdin.is_none()
        && command.delete.is_empty()
        && command.rename.is_empty()
        && command.root.join(&command.paths[0]).is_dir()
}

/// A folder to snapshot, compare or roll back, with its excludes; a local store below
/// it is never read.
fn folder(dir: &std::path::Path, excludes: &Excludes, config: &Config, quiet: bool) -> Result<Folder, Error> {
    let mut folder = Folder::new(dir)?;
    folder.policy = excludes.policy(dir)?;
    folder.gitignore = excludes.gitignore;
    folder.skip = store_folder(config);
    if !quiet {
        // Files found, and read because their stat changed: shown once a scan takes a while.
        let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::hidden());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} scanning: {len} files found, {pos} read [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let shown = bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        folder.progress = Some(bar);
    }
    Ok(folder)
}

/// The scan's progress display, gone.
fn done(folder: &Folder) {
    if let Some(bar) = &folder.progress {
        bar.finish_and_clear();
    }
}

/// The folder's stat cache, in the user's cache folder ($SNAPGIT_STAT_CACHE_DIR).
fn stat_cache(folder: &Folder, config: &Config) -> CacheFile {
    CacheFile::new(
        worktree::default_stat_dir().as_deref(),
        folder,
        &config.store,
        &config.repo,
    )
}

fn on_conflict(policy: OnConflict) -> ConflictPolicy {
    match policy {
        OnConflict::Fail => ConflictPolicy::Fail,
        OnConflict::Ours => ConflictPolicy::Ours,
        OnConflict::Theirs => ConflictPolicy::Theirs,
    }
}

fn commit_args(command: CommitCommand, branch: &str, config: &Config) -> Result<CommitArgs, Error> {
    let author = command.who.signature()?;
    let policy = command.excludes.policy(&command.root)?;
    let collected = Inputs {
        root: command.root,
        paths: command.paths,
        skip: store_folder(config),
        policy,
        gitignore: command.excludes.gitignore,
    }
    .collect()?;
    let mut args = CommitArgs::new(branch, author, command.message);
    args.changes = collected.changes;
    args.skipped = collected.skipped;
    if command.sync {
        args.sync = collected.folders;
    }
    if let Some(path) = command.stdin {
        let mut data = Vec::new();
        io::stdin().read_to_end(&mut data).map_err(|source| Error::Unreadable {
            path: "stdin".into(),
            source,
        })?;
        args.changes.push(Change::put(path, data));
    }
    args.changes.extend(command.delete.into_iter().map(Change::delete));
    for pair in command.rename.chunks(2) {
        if let [from, to] = pair {
            args.changes.push(Change::rename(from.as_str(), to.as_str()));
        }
    }
    args.expect_head = command.expect_head.as_deref().map(object_id).transpose()?;
    args.on_conflict = on_conflict(command.on_conflict);
    args.allow_empty = command.allow_empty;
    args.max_attempts = command.max_attempts;
    Ok(args)
}

/// Print a report on stdout. A closed pipe (`snapgit log | head`) is not an error.
fn emit<R: Report>(report: &R, json: bool) -> Result<(), Error> {
    let mut out = Vec::new();
    if json {
        serde_json::to_writer(&mut out, report).map_err(|err| Error::invalid(err.to_string()))?;
        out.push(b'\n');
    } else {
        report.write_text(&mut out);
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != io::ErrorKind::BrokenPipe => Err(Error::Unreadable {
            path: "stdout".into(),
            source: err,
        }),
        _ => Ok(()),
    }
}

fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} gc: {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Run a push or fetch with its HTTP transfers shown on stderr as they go: what is sent,
/// what has arrived of how much, and from where.
async fn transferring<T>(what: &'static str, quiet: bool, work: impl std::future::Future<Output = T>) -> T {
    if quiet {
        return work.await;
    }
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what);
    bar.enable_steady_tick(Duration::from_millis(120));
    let shown = bar.clone();
    let progress: snapgit_host::http::OnTransfer = std::sync::Arc::new(move |t: &snapgit_host::http::Transfer| {
        let size = |n: u64| indicatif::HumanBytes(n).to_string();
        let message = match (t.done, t.expected) {
            (true, _) => format!("{} {} received from {}", t.method, size(t.received), t.url),
            (false, Some(total)) => format!("receiving {} of {} from {}", size(t.received), size(total), t.url),
            (false, None) if t.received > 0 => format!("receiving {} from {}", size(t.received), t.url),
            (false, None) => format!("{} {} sent to {}", t.method, size(t.sent), t.url),
        };
        shown.set_message(message);
    });
    let out = snapgit_host::http::with_progress(progress, work).await;
    bar.finish_and_clear();
    out
}

/// A count of files written and deleted, for long rollbacks.
fn file_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} rollback: {pos} files [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, progress: GcProgress<'_>) {
    let progress = match progress {
        GcProgress::Core(progress) => progress,
        GcProgress::Calls(calls) => {
            bar.set_message(format!(
                "{} refs read, {} objects read, {} keys listed, {} deleted",
                calls.refs_read, calls.objects_read, calls.keys_listed, calls.deleted
            ));
            return;
        }
    };
    let message = match progress.phase {
        Phase::ListRefs => "listing refs".to_owned(),
        Phase::ReadRefs => format!("reading refs {}/{}", progress.refs_read, progress.refs_listed),
        Phase::Mark => format!(
            "marking: {} reachable objects, {} rounds",
            progress.reachable, progress.rounds
        ),
        Phase::ListObjects => "listing objects".to_owned(),
        Phase::Pack => format!("packing {} objects", progress.examined),
        Phase::Sweep => {
            if bar.length().is_none() {
                bar.set_length(progress.objects_listed);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("gc: sweeping {bar:30} {pos}/{len} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
            }
            bar.set_position(progress.examined);
            format!("{} deleted, {} young", progress.deleted, progress.young)
        }
        _ => "done".to_owned(),
    };
    bar.set_message(message);
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every command and flag: no two flags share a name, every
    /// default parses.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
