//! `snapgit mcp` as an MCP client sees it: the built binary started as a child process and
//! driven by rmcp's client over its stdin and stdout (initialize, list the tools, call
//! them), with real git reading the store it wrote.

use std::{process::Stdio, time::Duration};

use base64::Engine as _;
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::{Value, json};

use crate::support::{Work, git, snapgit};

/// The repo every test's server works on, in the store `memory` of its work folder.
const REFS: &str = "refs/namespaces/agent/refs/heads/main";

type Client = RunningService<RoleClient, ()>;

/// A client session with `snapgit --store memory --repo agent mcp` in `work`.
async fn connect(work: &Work) -> Client {
    let mut command = snapgit(work.path());
    command.args(["--store", "memory", "--repo", "agent", "mcp"]);
    let (transport, _) = TokioChildProcess::builder(tokio::process::Command::from(command))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("snapgit mcp starts");
    tokio::time::timeout(Duration::from_secs(120), ().serve(transport))
        .await
        .expect("the server answers initialize in time")
        .expect("the session initializes")
}

/// Call a tool with `arguments`; its result, whether a success or a tool error.
async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object")
    };
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    tokio::time::timeout(Duration::from_secs(120), client.call_tool(params))
        .await
        .unwrap_or_else(|_| panic!("{tool} answers in time"))
        .unwrap_or_else(|err| panic!("{tool} is answered: {err}"))
}

/// The result's JSON: the text content and the structured content, which must agree.
fn content(result: &CallToolResult) -> Value {
    let text = result.content[0].as_text().expect("text content").text.clone();
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    assert_eq!(result.structured_content.as_ref(), Some(&value));
    value
}

/// A successful call's report.
async fn ok(client: &Client, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments).await;
    let value = content(&result);
    assert_eq!(result.is_error, Some(false), "{tool} failed: {value}");
    value
}

/// A call that fails as a tool error with `code`, naming `needle` in its message.
async fn fails(client: &Client, tool: &str, arguments: Value, code: &str, needle: &str) {
    let result = call(client, tool, arguments).await;
    let value = content(&result);
    assert_eq!(result.is_error, Some(true), "{tool} succeeded: {value}");
    assert_eq!(value["code"], code, "{value}");
    let message = value["message"].as_str().expect("a message");
    assert!(message.contains(needle), "{message:?} does not name {needle:?}");
}

fn id(value: &Value) -> String {
    value["commit"].as_str().expect("a commit id").to_owned()
}

fn paths(value: &Value, list: &str) -> Vec<String> {
    value[list]
        .as_array()
        .expect("a list")
        .iter()
        .map(|entry| entry["path"].as_str().expect("a path").to_owned())
        .collect()
}

fn statuses(value: &Value) -> Vec<(String, String)> {
    value["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["status"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn an_agent_commits_reads_diffs_and_restores_its_memory() {
    let work = Work::empty();
    let client = connect(&work).await;
    let info = client.peer_info().expect("the server introduced itself");
    assert_eq!(info.server_info.as_ref().map(|s| s.name.as_str()), Some("snapgit"));
    assert!(info.capabilities.tools.is_some());

    let tools = client.list_all_tools().await.expect("tools are listed");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["commit", "diff", "list_files", "log", "read_file", "restore"]);
    for tool in &tools {
        assert!(tool.description.as_ref().is_some_and(|d| d.len() > 80), "{}", tool.name);
        assert!(tool.input_schema.contains_key("properties"), "{}", tool.name);
    }
    let commit = tools.iter().find(|t| t.name == "commit").expect("commit");
    assert_eq!(commit.input_schema["required"], json!(["files", "message"]));

    // Turn 1 creates the repo: its files are the first commit.
    let avatar = [0u8, 159, 146, 150, 255];
    let encoded = base64::engine::general_purpose::STANDARD.encode(avatar);
    let first = ok(
        &client,
        "commit",
        json!({"message": "turn 1", "files": [
            {"path": "memory/profile.md", "content": "# Profile\nname: Ada\n"},
            {"path": "state.json", "content": "{\"turn\": 1}\n"},
            {"path": "avatar.bin", "content_base64": encoded},
        ]}),
    )
    .await;
    assert_eq!(first["files_changed"], 3);
    let first_id = id(&first);

    let second = ok(
        &client,
        "commit",
        json!({"message": "turn 2", "expected_head": first_id, "files": [
            {"path": "memory/profile.md", "content": "# Profile\nname: Ada\nprefers: tea\n"},
            {"path": "state.json", "delete": true},
        ]}),
    )
    .await;
    assert_eq!(second["created"], true);
    assert_eq!(second["parent"], first_id.as_str());
    assert_eq!(
        statuses(&second),
        pairs(&[("M", "memory/profile.md"), ("D", "state.json")])
    );
    let second_id = id(&second);

    // The same content again changes nothing.
    let again = ok(
        &client,
        "commit",
        json!({"message": "turn 2 again", "files": [{"path": "memory/profile.md", "content": "# Profile\nname: Ada\nprefers: tea\n"}]}),
    )
    .await;
    assert_eq!(
        (again["created"].clone(), id(&again)),
        (json!(false), second_id.clone())
    );

    // Reads: now, at the first commit, and a file that is not text.
    let now = ok(&client, "read_file", json!({"path": "memory/profile.md"})).await;
    assert_eq!(now["content"], "# Profile\nname: Ada\nprefers: tea\n");
    let then = ok(&client, "read_file", json!({"path": "state.json", "rev": first_id})).await;
    assert_eq!(then["content"], "{\"turn\": 1}\n");
    let before = ok(
        &client,
        "read_file",
        json!({"path": "memory/profile.md", "rev": "main~1"}),
    )
    .await;
    assert_eq!(before["content"], "# Profile\nname: Ada\n");
    let binary = ok(&client, "read_file", json!({"path": "avatar.bin"})).await;
    assert_eq!(
        (binary["content"].clone(), binary["content_base64"].as_str()),
        (Value::Null, Some(encoded.as_str()))
    );

    let listed = ok(&client, "list_files", json!({})).await;
    assert_eq!(paths(&listed, "entries"), ["avatar.bin", "memory/profile.md"]);
    let top = ok(&client, "list_files", json!({"recursive": false, "rev": first_id})).await;
    assert_eq!(paths(&top, "entries"), ["avatar.bin", "memory", "state.json"]);

    // History, whole, paged and of one path.
    let log = ok(&client, "log", json!({})).await;
    let messages: Vec<&str> = log["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["turn 2\n", "turn 1\n"]);
    let page = ok(&client, "log", json!({"limit": 1})).await;
    assert_eq!(page["commits"][0]["id"], second_id.as_str());
    let rest = ok(&client, "log", json!({"limit": 1, "cursor": page["next"]})).await;
    assert_eq!(rest["commits"][0]["id"], first_id.as_str());
    assert_eq!(rest["next"], Value::Null);
    let of_avatar = ok(&client, "log", json!({"path": "avatar.bin"})).await;
    assert_eq!(of_avatar["commits"].as_array().unwrap().len(), 1);

    // The last commit against its parent, with the patch; and two named revisions.
    let diff = ok(&client, "diff", json!({"patch": true})).await;
    assert_eq!(
        statuses(&diff),
        pairs(&[("M", "memory/profile.md"), ("D", "state.json")])
    );
    assert!(diff["patch"].as_str().unwrap().contains("\n+prefers: tea\n"), "{diff}");
    let named = ok(
        &client,
        "diff",
        json!({"from": second_id, "to": first_id, "path": "state.json"}),
    )
    .await;
    assert_eq!(
        (statuses(&named), named["patch"].clone()),
        (pairs(&[("A", "state.json")]), Value::Null)
    );

    // Roll back to turn 1: a new commit, and the deleted file is back.
    let restored = ok(&client, "restore", json!({"rev": first_id})).await;
    assert_eq!(restored["parent"], second_id.as_str());
    assert_eq!(
        statuses(&restored),
        pairs(&[("M", "memory/profile.md"), ("A", "state.json")])
    );
    let back = ok(&client, "read_file", json!({"path": "state.json"})).await;
    assert_eq!(back["content"], "{\"turn\": 1}\n");
    // One path only, from turn 2.
    let one = ok(
        &client,
        "restore",
        json!({"rev": second_id, "path": "memory/profile.md", "message": "keep tea"}),
    )
    .await;
    assert_eq!(statuses(&one), pairs(&[("M", "memory/profile.md")]));
    let restored_id = id(&one);
    // A writer that read an older head is told so.
    fails(
        &client,
        "commit",
        json!({"message": "stale", "expected_head": first_id, "files": [{"path": "x.md", "content": "x"}]}),
        "HEAD_MOVED",
        &first_id[..7],
    )
    .await;

    // git reads every commit, and the files, from the store.
    let store = work.path().join("memory");
    let subjects = git(&store, &["log", "--format=%s", REFS]);
    assert!(subjects.starts_with("keep tea\n"), "{subjects}");
    assert!(subjects.ends_with("turn 2\nturn 1\n"), "{subjects}");
    assert_eq!(git(&store, &["rev-parse", REFS]).trim(), restored_id);
    assert_eq!(
        git(&store, &["show", &format!("{REFS}:memory/profile.md")]),
        "# Profile\nname: Ada\nprefers: tea\n"
    );
    assert_eq!(git(&store, &["show", &format!("{REFS}:state.json")]), "{\"turn\": 1}\n");
    assert_eq!(
        git(&store, &["log", "-1", "--format=%an <%ae> %at", REFS]),
        "Agent <agent@example.com> 1700000000\n"
    );
    git(&store, &["fsck", "--strict"]);

    client.cancel().await.expect("the session ends");
}

#[tokio::test]
async fn bad_input_is_a_tool_error_and_the_server_stays_up() {
    let work = Work::empty();
    let client = connect(&work).await;

    // Nothing committed yet: no repo.
    fails(
        &client,
        "read_file",
        json!({"path": "a.md"}),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    fails(&client, "log", json!({}), "NOT_FOUND", "does not exist").await;
    // Refused before anything is written.
    let file = |path: &str| json!({"message": "m", "files": [{"path": path, "content": "x"}]});
    fails(&client, "commit", file("../x"), "INVALID_INPUT", "../x").await;
    fails(&client, "commit", file(".git/config"), "INVALID_INPUT", ".git").await;
    fails(&client, "commit", file("/abs"), "INVALID_INPUT", "/abs").await;
    fails(
        &client,
        "commit",
        json!({"message": "m", "files": [{"path": "a.md", "content": "x", "delete": true}]}),
        "INVALID_INPUT",
        "exactly one",
    )
    .await;
    fails(
        &client,
        "commit",
        json!({"message": "m", "files": [{"path": "a.md", "content_base64": "not base64!"}]}),
        "INVALID_INPUT",
        "base64",
    )
    .await;
    fails(
        &client,
        "commit",
        json!({"message": "m", "files": []}),
        "INVALID_INPUT",
        "nothing",
    )
    .await;
    fails(
        &client,
        "commit",
        json!({"message": "m", "expected_head": "abc", "files": [{"path": "a.md", "content": "x"}]}),
        "INVALID_INPUT",
        "abc",
    )
    .await;
    assert!(
        !work.path().join("memory").join("refs/namespaces").exists(),
        "a refused commit wrote a ref"
    );

    ok(&client, "commit", file("notes/a.md")).await;
    fails(
        &client,
        "read_file",
        json!({"path": "missing.md"}),
        "NOT_FOUND",
        "missing.md",
    )
    .await;
    fails(&client, "read_file", json!({"path": "../x"}), "INVALID_INPUT", "../x").await;
    fails(
        &client,
        "read_file",
        json!({"path": "a.md", "rev": "nosuch"}),
        "NOT_FOUND",
        "nosuch",
    )
    .await;
    fails(
        &client,
        "read_file",
        json!({"path": "a.md", "rev": "deadbeef"}),
        "NOT_FOUND",
        "deadbeef",
    )
    .await;
    fails(&client, "list_files", json!({"path": "../x"}), "INVALID_INPUT", "../x").await;
    fails(
        &client,
        "list_files",
        json!({"path": "elsewhere"}),
        "NOT_FOUND",
        "elsewhere",
    )
    .await;
    fails(&client, "diff", json!({"from": "main~5"}), "NOT_FOUND", "main~5").await;
    fails(&client, "restore", json!({"rev": "nosuch"}), "NOT_FOUND", "nosuch").await;
    fails(
        &client,
        "log",
        json!({"cursor": "not a cursor"}),
        "INVALID_INPUT",
        "cursor",
    )
    .await;

    // Arguments that do not fit the schema fail as the tool's invalid input.
    fails(&client, "read_file", json!({}), "INVALID_INPUT", "path").await;
    fails(
        &client,
        "read_file",
        json!({"path": "a.md", "revision": "main"}),
        "INVALID_INPUT",
        "revision",
    )
    .await;
    fails(&client, "log", json!({"limit": "ten"}), "INVALID_INPUT", "ten").await;
    // A tool that does not exist is the protocol's error.
    let unknown = CallToolRequestParams::new("format_disk").with_arguments(serde_json::Map::new());
    assert!(client.call_tool(unknown).await.is_err());

    // Still serving.
    let read = ok(&client, "read_file", json!({"path": "notes/a.md"})).await;
    assert_eq!(read["content"], "x");
    client.cancel().await.expect("the session ends");
}
