//! The OpenAPI 3.1 document of the JSON API, served at `/openapi.json`: one operation
//! for each route of the JSON API's table (`api::ROUTES`), whose bodies and results are the JSON Schemas
//! core's types derive ([`snapgit_core::api::schema`]).

use axum::http::Method;
use serde_json::Value;
use snapgit_core::{
    api::schema::Bytes,
    commit::{Change, Signature},
    diff::tree as diff,
    gc, history, read,
    repo::{AdminOutput, CommitOutput, CommitRequest, RestoreRequest, Start},
};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
        Required, ResponseBuilder, Schema, Type,
        path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn, Paths},
        request_body::RequestBodyBuilder,
        schema::{ArrayBuilder, SchemaType},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

use super::api::ROUTES;

/// What a route's documentation holds beside its path and method.
struct Doc {
    summary: &'static str,
    description: &'static str,
    access: &'static str,
    query: &'static [(&'static str, &'static str, Type)],
    body: Option<RefOr<Schema>>,
    ok: (&'static str, &'static str, RefOr<Schema>),
}

fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn array(item: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(item).into()
}

/// A request type's schema without the fields the route takes from its path, and with
/// `optional` fields not required (the server fills them).
fn body<T: ToSchema>(from_path: &[&str], optional: &[&str]) -> RefOr<Schema> {
    match T::schema() {
        RefOr::T(Schema::Object(mut object)) => {
            for name in from_path {
                object.properties.remove(*name);
            }
            object
                .required
                .retain(|name| !from_path.contains(&name.as_str()) && !optional.contains(&name.as_str()));
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

fn object(fields: &[(&str, RefOr<Schema>, bool)]) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new();
    for (name, schema, required) in fields {
        builder = builder.property(*name, schema.clone());
        if *required {
            builder = builder.required(*name);
        }
    }
    builder.into()
}

const REV: (&str, &str, Type) = (
    "rev",
    "The revision to read: a branch, tag, `main~2`, an id or an abbreviated id (default `main`)",
    Type::String,
);

const JSON: &str = "application/json";

/// The documentation of the route `id`.
fn doc(id: &str) -> Doc {
    let admin = reference::<AdminOutput>;
    let (summary, description, access, query, body, ok): (_, _, _, &'static [_], _, _) = match id {
        "listRepos" => (
            "List repos",
            "The repos of the store the token may read, sorted, as `{\"repos\": [...]}`.",
            "read",
            &[],
            None,
            ("200", JSON, admin()),
        ),
        "createRepo" => (
            "Create a repo",
            "A new repo with a first commit of `files` (puts only) on `branch` (default `main`).",
            "write",
            &[],
            Some(object(&[
                ("repo", string(), true),
                ("branch", string(), false),
                ("files", array(reference::<Change>()), false),
                ("author", reference::<Signature>(), true),
                ("message", string(), false),
            ])),
            ("201", JSON, admin()),
        ),
        "deleteRepo" => (
            "Delete a repo",
            "Every ref of the repo; its objects go at the next GC.",
            "admin",
            &[],
            None,
            ("200", JSON, admin()),
        ),
        "listBranches" => (
            "List branches",
            "The repo's branches, sorted.",
            "read",
            &[],
            None,
            ("200", JSON, admin()),
        ),
        "createBranch" => (
            "Create a branch",
            "A branch at `start`: `{\"branch\": \"main\"}` (the default), `{\"commit\": id}` or `{\"rev\": \"main~2\"}`.",
            "write",
            &[],
            Some(object(&[
                ("branch", string(), true),
                ("start", reference::<Start>(), false),
            ])),
            ("201", JSON, admin()),
        ),
        "readHead" => (
            "Read a branch's head",
            "The commit the branch points at.",
            "read",
            &[],
            None,
            ("200", JSON, admin()),
        ),
        "deleteBranch" => (
            "Delete a branch",
            "The branch's ref.",
            "write",
            &[],
            None,
            ("200", JSON, admin()),
        ),
        "commit" => (
            "Commit",
            "An atomic commit of puts, deletes and renames to the branch. A lost race is replayed onto the new head \
             (`onConflict` settles a path both sides changed); with `expectedHead` the branch must be there instead \
             (412 HEAD_MOVED). A signature without `time` gets the server's clock. With \
             `Content-Type: application/x-ndjson` the body is streamed: the first line is this request without \
             `changes`, each further line one change.",
            "write",
            &[],
            Some(body::<CommitRequest>(&["repo", "branch"], &[])),
            ("200", JSON, reference::<CommitOutput>()),
        ),
        "restore" => (
            "Restore",
            "A new commit on the branch whose tree (or `path` only) is the one of `rev`; history is never rewritten.",
            "write",
            &[],
            Some({
                let mut schema = body::<RestoreRequest>(&["repo", "branch", "target"], &[]);
                if let RefOr::T(Schema::Object(object)) = &mut schema {
                    object.properties.insert("rev".into(), string());
                    object.required.push("rev".into());
                }
                schema
            }),
            ("200", JSON, reference::<CommitOutput>()),
        ),
        "prune" => (
            "Prune history",
            "Apply a retention to the branch: older commits are dropped from its history (a new chain of the kept \
             commits); their objects go at the next GC.",
            "write",
            &[],
            Some(body::<gc::PruneRequest>(&["repo", "branch"], &[])),
            ("200", JSON, reference::<gc::Pruned>()),
        ),
        "readFile" => (
            "Read a file",
            "The file's bytes. `ETag` is its blob id (`If-None-Match` answers 304), `X-Snapgit-Commit` the commit \
             read, `X-Snapgit-Mode` its mode.",
            "read",
            &[REV],
            None,
            (
                "200",
                "application/octet-stream",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/octet-stream")
                    .into(),
            ),
        ),
        "readFiles" => (
            "Read many files",
            "The files at `paths` (at most 1000), or every file below `folder`, at `rev`.",
            "read",
            &[],
            Some(object(&[
                ("rev", string(), false),
                ("paths", array(string()), false),
                ("folder", string(), false),
            ])),
            (
                "200",
                JSON,
                object(&[
                    ("commit", string(), true),
                    ("files", array(reference::<read::FileWithPath>()), true),
                ]),
            ),
        ),
        "listRoot" | "listTree" => (
            if id == "listRoot" {
                "List the root folder"
            } else {
                "List a folder"
            },
            "The folder's files and submodules (every one below with `recursive`, the default; one level \
             otherwise, with folders), without reading blobs.",
            "read",
            &[
                REV,
                (
                    "recursive",
                    "Every entry below, or one level (default true)",
                    Type::Boolean,
                ),
            ],
            None,
            (
                "200",
                JSON,
                object(&[
                    ("commit", string(), true),
                    ("entries", array(reference::<read::Entry>()), true),
                ]),
            ),
        ),
        "log" => (
            "History",
            "A page of commits, newest first; `next` is the cursor of the next page.",
            "read",
            &[
                REV,
                ("path", "Only commits that changed this file or folder", Type::String),
                ("limit", "The most commits in the page", Type::Integer),
                ("cursor", "The `next` of the previous page", Type::String),
                ("firstParent", "Follow first parents only (default true)", Type::Boolean),
            ],
            None,
            ("200", JSON, reference::<history::Page>()),
        ),
        "show" => (
            "Show a commit",
            "The commit and what it changed from its first parent.",
            "read",
            &[
                ("path", "Only changes below this path", Type::String),
                ("format", "`patch` adds the unified patch", Type::String),
                (
                    "renames",
                    "Pair deleted and added files as renames (default true)",
                    Type::Boolean,
                ),
            ],
            None,
            (
                "200",
                JSON,
                object(&[
                    ("commit", reference::<read::CommitInfo>(), true),
                    ("diff", reference::<diff::Output>(), true),
                ]),
            ),
        ),
        "diff" => (
            "Diff",
            "The difference between two revisions. `format` is `json` (the default), or git's text: \
             `name-status`, `numstat` or `patch`.",
            "read",
            &[
                ("from", "The old side (default: the first parent of `to`)", Type::String),
                ("to", "The new side (default `main`)", Type::String),
                ("path", "Only changes below this path", Type::String),
                ("format", "json, name-status, numstat or patch", Type::String),
                (
                    "renames",
                    "Pair deleted and added files as renames (default true)",
                    Type::Boolean,
                ),
            ],
            None,
            ("200", JSON, reference::<diff::Output>()),
        ),
        "footprint" => (
            "Footprint",
            "What the store holds: objects and bytes, per repo, and what no ref reaches.",
            "admin, all repos",
            &[],
            None,
            ("200", JSON, reference::<gc::FootprintReport>()),
        ),
        "gc" => (
            "Garbage collection",
            "Delete what no ref, HEAD, reflog or tag reaches and is older than the grace period.",
            "admin, all repos",
            &[],
            Some(body::<gc::CollectOptions>(&[], &["nowMs"])),
            ("200", JSON, reference::<gc::Collected>()),
        ),
        "compact" => (
            "Compaction",
            "Loose objects into packs with deltas, small packs merged.",
            "admin, all repos",
            &[],
            Some(body::<gc::CompactOptions>(&[], &["nowMs"])),
            ("200", JSON, reference::<gc::Compacted>()),
        ),
        "cap" => (
            "Size cap",
            "Prune the oldest history first, one commit per repo in turn, until what the refs reach fits maxBytes; compaction with dropUnreachable and GC then free the space.",
            "admin, all repos",
            &[],
            Some(body::<gc::CapRequest>(&[], &[])),
            ("200", JSON, reference::<gc::Capped>()),
        ),
        other => unreachable!("no documentation for the route {other}"),
    };
    Doc {
        summary,
        description,
        access,
        query,
        body,
        ok,
    }
}

/// Every schema the document names: core's types and the ones they use.
fn components() -> ComponentsBuilder {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    macro_rules! add {
        ($($t:ty),*) => {$(
            schemas.push((<$t as ToSchema>::name().into_owned(), <$t as PartialSchema>::schema()));
            <$t as ToSchema>::schemas(&mut schemas);
        )*};
    }
    add!(
        AdminOutput,
        Change,
        Signature,
        Start,
        CommitRequest,
        CommitOutput,
        RestoreRequest,
        gc::PruneRequest,
        gc::Pruned,
        read::FileWithPath,
        read::Entry,
        read::CommitInfo,
        history::Page,
        diff::Output,
        gc::FootprintReport,
        gc::CollectOptions,
        gc::Collected,
        gc::CompactOptions,
        gc::Compacted,
        gc::CapRequest,
        gc::Capped,
        Bytes
    );
    schemas.push(("Problem".into(), problem()));
    let mut builder = ComponentsBuilder::new();
    for (name, schema) in schemas {
        builder = builder.schema(name, schema);
    }
    builder.security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token of the server's tokens file, scoped to repos and to read, write or admin",
                ))
                .build(),
        ),
    )
}

/// An error: `application/problem+json` (RFC 9457) with core's code.
fn problem() -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("type", string())
        .property("title", string())
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .property("detail", string())
        .property(
            "code",
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some([
                "INVALID_INPUT",
                "NOT_FOUND",
                "ALREADY_EXISTS",
                "CORRUPT",
                "CONFLICT",
                "LOST_RACE",
                "HEAD_MOVED",
                "EMPTY_COMMIT",
                "POLICY",
                "LIMIT",
                "STORAGE",
                "UNSUPPORTED",
                "MISUSE",
                "UNAUTHORIZED",
                "FORBIDDEN",
            ])),
        )
        .property(
            "value",
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .description(Some("The offending value")),
        )
        .required("code")
        .required("status")
        .required("detail")
        .description(Some(
            "An error: core's code, a message, and the values it names (`value`, `limit`, `expected`...)",
        ))
        .into()
}

fn operation(id: &str, path: &str) -> Operation {
    let doc = doc(id);
    let mut builder = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(doc.summary))
        .description(Some(format!("{} Access: {}.", doc.description, doc.access)))
        .security(SecurityRequirement::new("token", Vec::<String>::new()));
    for name in path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
    {
        let what = match name {
            "repo" => "The repo",
            "branch" => "The branch (a `/` in it as `%2F`)",
            "path" => "The path in the repo (slashes as they are)",
            _ => "The revision: a branch, tag, `main~2`, an id or an abbreviated id",
        };
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(what))
                .schema(Some(string())),
        );
    }
    for (name, what, kind) in doc.query {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*what))
                .schema(Some(ObjectBuilder::new().schema_type(kind.clone()))),
        );
    }
    if let Some(schema) = doc.body {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
                .required(Some(Required::True))
                .build(),
        ));
    }
    let (status, content_type, schema) = doc.ok;
    builder = builder.response(
        status,
        ResponseBuilder::new()
            .description(doc.summary)
            .content(content_type, ContentBuilder::new().schema(Some(schema)).build()),
    );
    let problem = || {
        ResponseBuilder::new().content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
                .build(),
        )
    };
    for (status, what) in [
        ("400", "INVALID_INPUT: a bad name, path, id, revision or body"),
        ("401", "UNAUTHORIZED: no token, or one the server does not know"),
        ("403", "FORBIDDEN: the token does not allow this here"),
        ("404", "NOT_FOUND: no such repo, branch, commit or path"),
        ("409", "CONFLICT, ALREADY_EXISTS or LOST_RACE"),
        ("412", "HEAD_MOVED: the branch is not at expectedHead"),
        ("413", "LIMIT: a size or count limit"),
        ("422", "POLICY or EMPTY_COMMIT"),
        (
            "503",
            "STORAGE: storage or the lock service failed; or the request took too long",
        ),
    ] {
        builder = builder.response(status, problem().description(what));
    }
    builder.build()
}

fn method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        _ => HttpMethod::Get,
    }
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for (verb, path, id) in ROUTES {
        paths.add_path_operation(path, vec![method(verb)], operation(id, path));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("snapgit")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Git-compatible snapshots of agent memory: repos, atomic multi-file commits, files, history, \
                     diffs and restores over HTTP. Every body is the serde form of one of core's operations. File \
                     contents in JSON are {\"text\": …} or {\"base64\": …}. The same server is a git remote at \
                     /<repo>.git.",
                )),
        )
        .paths(paths)
        .components(Some(components().build()))
        .build()
}

/// The document as JSON, as `/openapi.json` serves it: descriptions (core's doc comments)
/// without rustdoc's links to Rust items, which mean nothing outside the crate docs.
pub fn json() -> Value {
    let mut document = serde_json::to_value(document()).unwrap_or(Value::Null);
    unlink_descriptions(&mut document);
    document
}

fn unlink_descriptions(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(text) if key == "description" => *text = unlink(text),
                    _ => unlink_descriptions(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unlink_descriptions),
        _ => {}
    }
}

/// `text` with rustdoc's intra-doc links made plain: ``[`X`]`` and ``[`X`](path)`` become
/// `` `X` ``. Links to a URL (`[text](https://…)`) stay, as Markdown.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("[`") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find("`]") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let label = &after[..close + 1];
        let tail = &after[close + 2..];
        let target = tail
            .strip_prefix('(')
            .and_then(|t| t.find(')').map(|end| (&t[..end], &t[end + 1..])));
        match target {
            Some((target, _)) if target.contains("://") => {
                out.push('[');
                out.push_str(label);
                out.push(']');
                rest = tail;
            }
            Some((_, remainder)) => {
                out.push_str(label);
                rest = remainder;
            }
            None => {
                out.push_str(label);
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::unlink;

    #[test]
    fn rustdoc_links_become_code() {
        assert_eq!(
            unlink("Fail with [`Error::HeadMoved`] instead."),
            "Fail with `Error::HeadMoved` instead."
        );
        assert_eq!(
            unlink("or [`min_packs`](Self::min_packs) packs"),
            "or `min_packs` packs"
        );
        assert_eq!(
            unlink("see [`RFC`](https://example.com/rfc)"),
            "see [`RFC`](https://example.com/rfc)"
        );
        assert_eq!(unlink("a [list] and [`open"), "a [list] and [`open");
        assert_eq!(unlink("[`a`][`b`](x)"), "`a``b`");
    }
}
