//! `snapgit mcp`: one repo of a store as the tools of a Model Context Protocol server on
//! stdio, so that an agent can checkpoint its memory files and roll them back.
//!
//! The server is a face of [`crate::cli`] and nothing more: each tool turns its JSON
//! input into the arguments of a [`Session`] method, the method the matching `snapgit`
//! command calls, which runs core's operation ([`snapgit_core::api::Request`]) on the
//! session's engine. A tool's result is that command's `--json` report, as JSON text and
//! as structured content; a failure is a tool error (`isError`) whose content is the
//! `--json` error, `{"code", "exit", "message"}`, with core's stable code
//! (`INVALID_INPUT`, `NOT_FOUND`, `HEAD_MOVED`...). Core's own serde form writes file
//! contents and patches as byte arrays; the reports write them as text (base64 for a
//! file that is not UTF-8), which is what an agent reads.
//!
//! | tool | does | the command |
//! |---|---|---|
//! | `commit` | files written (text or base64) or deleted, as one commit | `commit --stdin`, `--delete` |
//! | `read_file` | one file at a revision | `cat` |
//! | `list_files` | the files below a folder, without their contents | `ls -r` |
//! | `log` | history, newest first, optionally of one path, in pages | `log --path` |
//! | `diff` | files changed between two revisions, optionally the patch | `diff --name-status --patch` |
//! | `restore` | a revision's files (or one path) back, as a new commit | `restore` |
//!
//! One server works on one repo and branch ([`Options`]). A store that is a folder is
//! created when missing, and a repo that does not exist is created by the first commit,
//! whose files become its first commit (core's `create-repo`); until then the read
//! tools answer `NOT_FOUND`. History is never rewritten: a restore is a new commit.
//!
//! The tools and their input schemas, listed without a store:
//!
//! ```
//! let tools = snapgit_host::mcp::tools();
//! let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
//! assert_eq!(names, ["commit", "diff", "list_files", "log", "read_file", "restore"]);
//! assert!(tools.iter().all(|tool| tool.input_schema.contains_key("properties")));
//! ```

use std::sync::Arc;

use base64::Engine as _;
use bstr::BString;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use snapgit_core::{HashKind, ObjectId, commit::Change, commit::Signature, id};
use tokio::sync::Mutex;

use crate::cli::{
    self, CommitArgs, Config, Error, Session,
    output::{CommitReport, DiffFormat, ErrorReport, RepoCreated},
};

/// What a server works on besides the store: the branch, and who writes its commits.
#[derive(Debug, Clone)]
pub struct Options {
    /// The branch commits go to, and the revision read when a tool names none.
    pub branch: String,
    /// The author and committer of every commit, `Name <email>`.
    pub author: String,
    /// The commit time in seconds since the Unix epoch; `None`: the time of each commit.
    pub date: Option<i64>,
}

impl Options {
    /// Commits to `branch` by `author` (`Name <email>`), timed when they are made.
    pub fn new(branch: impl Into<String>, author: impl Into<String>) -> Self {
        Options {
            branch: branch.into(),
            author: author.into(),
            date: None,
        }
    }

    fn signature(&self) -> Result<Signature, Error> {
        cli::parse_author(&self.author, self.date.unwrap_or_else(cli::now_seconds))
    }
}

/// Serve the repo of `config` on stdin and stdout until the client closes them. The store
/// is opened (a folder store created if missing) before the first message is read.
pub async fn serve_stdio(config: &Config, options: Options) -> Result<(), Error> {
    let server = Memory::new(Session::create(config).await?, options)?;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| Error::invalid(format!("the MCP session did not start: {err}")))?;
    running
        .waiting()
        .await
        .map_err(|err| Error::invalid(format!("the MCP session failed: {err}")))?;
    Ok(())
}

/// The tools every server has, with their descriptions and input schemas.
pub fn tools() -> Vec<Tool> {
    let mut tools = Memory::tool_router().list_all();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    tools
}

/// The MCP server of one repo: its tools run one at a time on one session.
#[derive(Debug, Clone)]
pub struct Memory {
    session: Arc<Mutex<Session>>,
    options: Arc<Options>,
    tool_router: ToolRouter<Self>,
}

/// One file of a commit: written with `content` or `content_base64`, or deleted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileInput {
    /// The file's path in the repo: relative, `/`-separated, e.g. `notes/today.md`.
    path: String,
    /// The new content, as UTF-8 text.
    content: Option<String>,
    /// The new content in base64, for a file that is not text.
    content_base64: Option<String>,
    /// `true` deletes the file (or every file below a folder) instead.
    #[serde(default)]
    delete: bool,
}

impl FileInput {
    fn change(self) -> Result<Change, Error> {
        let FileInput {
            path,
            content,
            content_base64,
            delete,
        } = self;
        match (content, content_base64, delete) {
            (Some(text), None, false) => Ok(Change::put(path, text)),
            (None, Some(encoded), false) => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|err| Error::invalid(format!("content_base64 of {path:?} is not base64: {err}")))?;
                Ok(Change::put(path, data))
            }
            (None, None, true) => Ok(Change::delete(path)),
            _ => Err(Error::invalid(format!(
                "{path:?} needs exactly one of content, content_base64 or delete: true"
            ))),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CommitInput {
    /// The files to write or delete; every other file stays as it is.
    files: Vec<FileInput>,
    /// The commit message: what changed and why.
    message: String,
    /// Commit only if the branch is still at this commit id (from an earlier result):
    /// fails with `HEAD_MOVED` instead of merging onto another writer's commit.
    expected_head: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadFileInput {
    /// The file's path in the repo.
    path: String,
    /// Where to read it: a commit id (4 or more hex digits), a branch or tag, with `~N`
    /// for N commits before (`main~1`). Default: the branch's head.
    rev: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListFilesInput {
    /// The folder to list. Default: the root.
    #[serde(default)]
    path: String,
    /// Where to list it: a commit id, a branch or tag, with `~N`. Default: the branch's head.
    rev: Option<String>,
    /// Every file below the folder (the default), or only its own entries, folders
    /// included.
    #[serde(default = "yes")]
    recursive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogInput {
    /// Only commits that changed this file or folder.
    path: Option<String>,
    /// At most this many commits.
    #[serde(default = "twenty")]
    limit: usize,
    /// The `next` of the previous page, to continue where it stopped.
    cursor: Option<String>,
    /// Where to start: a commit id, a branch or tag, with `~N`. Default: the branch's head.
    rev: Option<String>,
}

fn twenty() -> usize {
    20
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DiffInput {
    /// The old side: a commit id, a branch or tag, with `~N`. Default: the first parent
    /// of `to`.
    from: Option<String>,
    /// The new side. Default: the branch's head.
    to: Option<String>,
    /// Only this file or folder.
    path: Option<String>,
    /// Also the unified patch (`git diff` text) of every changed text file.
    #[serde(default)]
    patch: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RestoreInput {
    /// The revision to bring back: a commit id, a branch or tag, with `~N` (`main~2`:
    /// as it was two commits ago).
    rev: String,
    /// Only this file or folder; default: every file (files added since are deleted).
    path: Option<String>,
    /// The commit message. Default: one naming the path and the revision.
    message: Option<String>,
    /// Restore only if the branch is still at this commit id: fails with `HEAD_MOVED`
    /// otherwise.
    expected_head: Option<String>,
}

#[tool_router]
impl Memory {
    /// A server of the repo `session` works on, with `options`; the author is checked
    /// now, so that a bad one fails before any client connects.
    pub fn new(session: Session, options: Options) -> Result<Self, Error> {
        options.signature()?;
        Ok(Memory {
            session: Arc::new(Mutex::new(session)),
            options: Arc::new(options),
            tool_router: Self::tool_router(),
        })
    }

    #[tool(
        description = "Save files to memory as one commit. Each entry of `files` writes a file (`content` as text, or `content_base64`) or deletes it (`delete: true`); files not named stay as they are. Returns the new commit id (`commit`), and per changed file its status (A added, M modified, D deleted) and lines added and removed. Nothing that is already the same is committed again (`created: false`). History is kept: every earlier commit can still be read, diffed and restored.",
        annotations(title = "Commit files", destructive_hint = false, open_world_hint = false)
    )]
    async fn commit(&self, Parameters(input): Parameters<CommitInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        answer(self.commit_files(&mut session, input).await)
    }

    #[tool(
        description = "Read one file as it is now, or as it was at an earlier commit (`rev`). Returns its `content` as text, or `content_base64` when it is not UTF-8, with its size and blob id.",
        annotations(title = "Read a file", read_only_hint = true, open_world_hint = false)
    )]
    async fn read_file(&self, Parameters(input): Parameters<ReadFileInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        let result = async {
            let commit = session.resolve(self.rev(&input.rev)).await?;
            session.cat(&commit, &input.path).await
        }
        .await;
        answer(result)
    }

    #[tool(
        description = "List the files below a folder (default: every file in memory), now or at an earlier commit (`rev`), without reading their contents: path, mode, kind and blob id of each. A blob id that differs between two listings means the file changed.",
        annotations(title = "List files", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_files(&self, Parameters(input): Parameters<ListFilesInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        let result = async {
            let commit = session.resolve(self.rev(&input.rev)).await?;
            session.ls(&commit, &input.path, input.recursive).await
        }
        .await;
        answer(result)
    }

    #[tool(
        description = "The history of memory, newest commit first: id, message, author, date and parents of each. With `path`, only the commits that changed that file or folder. Pages: pass the result's `next` as `cursor` for older commits.",
        annotations(title = "History", read_only_hint = true, open_world_hint = false)
    )]
    async fn log(&self, Parameters(input): Parameters<LogInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        let result = async {
            let start = session.resolve(self.rev(&input.rev)).await?;
            let path = input.path.map(BString::from);
            session.log(&start, path, input.limit, input.cursor, false).await
        }
        .await;
        answer(result)
    }

    #[tool(
        description = "What changed between two commits (default: the last commit against the one before it): each changed file with its status (A added, M modified, D deleted, R renamed), blob ids and lines added and removed; with `patch: true`, also the unified diff text.",
        annotations(title = "Diff", read_only_hint = true, open_world_hint = false)
    )]
    async fn diff(&self, Parameters(input): Parameters<DiffInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        let result = async {
            let from = match &input.from {
                Some(from) => Some(session.resolve(from).await?),
                None => None,
            };
            let to = session.resolve(self.rev(&input.to)).await?;
            let format = DiffFormat {
                name_status: true,
                patch: input.patch,
                ..DiffFormat::default()
            };
            session.diff(from, &to, input.path.map(BString::from), format).await
        }
        .await;
        answer(result)
    }

    #[tool(
        description = "Roll memory back: a new commit whose files (or only `path`) are as they were at `rev`, e.g. an earlier commit id from `log`, or `main~1` for the state before the last commit. Files added since are deleted, changed ones brought back. Nothing is lost: the commits after `rev` stay in the history and can be restored in turn.",
        annotations(title = "Restore", destructive_hint = false, open_world_hint = false)
    )]
    async fn restore(&self, Parameters(input): Parameters<RestoreInput>) -> CallToolResult {
        let mut session = self.session.lock().await;
        let result = async {
            let author = self.options.signature()?;
            let expected_head = input.expected_head.as_deref().map(object_id).transpose()?;
            let path = input.path.map(BString::from);
            session
                .restore(
                    &self.options.branch,
                    &input.rev,
                    path,
                    author,
                    input.message,
                    expected_head,
                )
                .await
        }
        .await;
        answer(result)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Memory {
    /// The router's answer, except that arguments the schema refuses (rmcp's own tool
    /// error, text only) get the same `{"code", "exit", "message"}` as every other
    /// failure, with `INVALID_INPUT`.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        match self.tool_router.call(call).await? {
            CallToolResponse::Complete(result)
                if result.is_error == Some(true) && result.structured_content.is_none() =>
            {
                let message: Vec<&str> = result
                    .content
                    .iter()
                    .filter_map(|c| Some(c.as_text()?.text.as_str()))
                    .collect();
                Ok(answer::<()>(Err(Error::invalid(message.join("\n")))).into())
            }
            other => Ok(other),
        }
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("snapgit", env!("CARGO_PKG_VERSION"))
                    .with_title("snapgit memory")
                    .with_description("Git-compatible snapshots of an agent's memory files"),
            )
            .with_instructions(
                "A versioned store of memory files (a git repository). Save files with \
                 `commit` after each step worth keeping; read them back with `read_file` and \
                 `list_files`; see what changed with `log` and `diff`; go back to an earlier \
                 state with `restore`, which adds a new commit and never deletes history. \
                 Revisions (`rev`, `from`, `to`) are commit ids from earlier results, or \
                 `main~N` for N commits ago.",
            )
    }
}

impl Memory {
    /// The revision a tool names, or the branch.
    fn rev<'a>(&'a self, rev: &'a Option<String>) -> &'a str {
        rev.as_deref().unwrap_or(&self.options.branch)
    }

    /// A commit of the input's files; the repo's first commit when it does not exist yet.
    async fn commit_files(&self, session: &mut Session, input: CommitInput) -> Result<Committed, Error> {
        let CommitInput {
            files,
            message,
            expected_head,
        } = input;
        let changes = files
            .into_iter()
            .map(FileInput::change)
            .collect::<Result<Vec<_>, _>>()?;
        if changes.is_empty() {
            return Err(Error::invalid("nothing to commit: name at least one file"));
        }
        let mut args = CommitArgs::new(&self.options.branch, self.options.signature()?, message);
        args.changes = changes;
        args.expect_head = expected_head.as_deref().map(object_id).transpose()?;
        // Kept for the repo's first commit: a commit bound to a head cannot be one.
        let first = args.expect_head.is_none().then(|| args.clone());
        let err = match session.commit(args).await {
            Ok(report) => return Ok(Committed::Commit(Box::new(report))),
            Err(err) => err,
        };
        let Some(args) = first.filter(|_| err.code() == cli::Code::NotFound) else {
            return Err(err);
        };
        // No such branch: create the repo, unless it exists (then the branch is missing).
        match session.list_branches().await {
            Err(missing) if missing.code() == cli::Code::NotFound => {}
            _ => return Err(err),
        }
        let repo = session.repo().to_owned();
        let created = session
            .create_repo(
                &repo,
                &args.branch,
                args.changes.clone(),
                args.author.clone(),
                &args.message,
            )
            .await;
        match created {
            Ok(report) => Ok(Committed::Created(report)),
            // Another writer created it meanwhile: commit onto theirs.
            Err(err) if err.code() == cli::Code::AlreadyExists => {
                Ok(Committed::Commit(Box::new(session.commit(args).await?)))
            }
            Err(err) => Err(err),
        }
    }
}

/// What the `commit` tool made: a commit, or the repo with it as its first commit.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Committed {
    Commit(Box<CommitReport>),
    Created(RepoCreated),
}

fn object_id(text: &str) -> Result<ObjectId, Error> {
    Ok(id::parse(HashKind::Sha1, text)?)
}

/// A tool's result: the report as JSON text (its fields in the order `--json` prints
/// them) and as structured content; or a tool error with the error's code and message.
fn answer<R: Serialize>(result: Result<R, Error>) -> CallToolResult {
    let encoded = result
        .and_then(|report| encode(&report).map_err(|err| Error::invalid(format!("a report that is not JSON: {err}"))));
    let (text, value, is_error) = match encoded {
        Ok((text, value)) => (text, value, false),
        Err(err) => {
            let code = err.code();
            let report = ErrorReport {
                code: code.as_str(),
                exit: cli::exit_code(code),
                message: err.message(),
            };
            let (text, value) = encode(&report).unwrap_or_default();
            (text, value, true)
        }
    };
    let mut result = if is_error {
        CallToolResult::structured_error(value)
    } else {
        CallToolResult::structured(value)
    };
    result.content = vec![ContentBlock::text(text)];
    result
}

fn encode(report: &impl Serialize) -> Result<(String, serde_json::Value), serde_json::Error> {
    Ok((serde_json::to_string(report)?, serde_json::to_value(report)?))
}
