"""Every route over raw HTTP: its normal answer, then bad JSON, wrong types, bad names,
paths that escape, unknown revisions and oversized bodies, each a problem+json with
core's code and nothing written."""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import httpx
import pytest
from conftest import Server, author_json, ndjson, new_name, problem

ID = "0" * 39 + "1"


def json_of(response: httpx.Response, status: int = 200) -> object:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_every_route_answers(http: httpx.Client, server: Server):
    repo = new_name("raw")
    assert json_of(http.get("/healthz")) == {"status": "ok"}
    created = json_of(http.post("/v1/repos", json={"repo": repo, "files": [{"type": "put", "path": "a.md", "data": "a\n"}], "author": author_json()}), 201)
    first = created["created"]["commit"]
    assert repo in json_of(http.get("/v1/repos"))["repos"]
    assert json_of(http.get(f"/v1/repos/{repo}/branches")) == {"branches": ["main"]}
    assert json_of(http.get(f"/v1/repos/{repo}/branches/main")) == {"head": first}
    assert json_of(http.post(f"/v1/repos/{repo}/branches", json={"branch": "side"}), 201) == {"branchCreated": first}
    assert json_of(http.delete(f"/v1/repos/{repo}/branches/side")) == {"deleted": [server.ref(repo, "side")]}

    body = {"changes": [{"type": "put", "path": "b.bin", "data": {"base64": "/wA="}}, {"type": "put", "path": "a.md", "data": {"text": "a\nb\n"}}], "author": author_json(), "message": "json"}
    second = json_of(http.post(f"/v1/repos/{repo}/branches/main/commits", json=body))
    assert second["parent"] == first and second["commit"] == server.head(repo)
    streamed = ndjson([{"author": author_json(), "message": "ndjson"}, {"type": "put", "path": "c.md", "data": "c\n"}, {"type": "rename", "from": "b.bin", "to": "d.bin"}])
    third = json_of(http.post(f"/v1/repos/{repo}/branches/main/commits", content=streamed, headers={"content-type": "application/x-ndjson"}))
    assert third["parent"] == second["commit"]

    raw = http.get(f"/v1/repos/{repo}/files/d.bin")
    assert raw.status_code == 200 and raw.content == b"\xff\x00"
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["x-snapgit-commit"] == third["commit"] and raw.headers["x-snapgit-mode"] == "regular"
    etag = raw.headers["etag"]
    assert etag == '"' + server.git("rev-parse", f"{third['commit']}:d.bin").strip() + '"'
    unchanged = http.get(f"/v1/repos/{repo}/files/d.bin", headers={"if-none-match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert http.get(f"/v1/repos/{repo}/files/a.md", params={"rev": "main~2"}).content == b"a\n"

    files = json_of(http.post(f"/v1/repos/{repo}/read", json={"paths": ["a.md", "d.bin"]}))
    assert [f["file"]["data"] for f in files["files"]] == [{"text": "a\nb\n"}, {"base64": "/wA="}]
    assert [f["path"] for f in json_of(http.post(f"/v1/repos/{repo}/read", json={"folder": ""}))["files"]] == ["a.md", "c.md", "d.bin"]
    assert [e["path"] for e in json_of(http.get(f"/v1/repos/{repo}/tree", params={"recursive": "false"}))["entries"]] == ["a.md", "c.md", "d.bin"]
    page = json_of(http.get(f"/v1/repos/{repo}/log", params={"limit": 2}))
    assert [c["id"] for c in page["commits"]] == [third["commit"], second["commit"]] and page["next"]
    assert [c["id"] for c in json_of(http.get(f"/v1/repos/{repo}/log", params={"cursor": page["next"], "rev": third["commit"]}))["commits"]] == [first]
    shown = json_of(http.get(f"/v1/repos/{repo}/commits/main~1", params={"format": "patch"}))
    assert shown["commit"]["id"] == second["commit"] and shown["diff"]["patch"]["text"].startswith("diff --git")
    assert json_of(http.get(f"/v1/repos/{repo}/diff", params={"from": first}))["from"] == first
    for fmt, kind in [("name-status", "text/plain; charset=utf-8"), ("numstat", "text/plain; charset=utf-8"), ("patch", "text/x-diff")]:
        answer = http.get(f"/v1/repos/{repo}/diff", params={"format": fmt, "from": first})
        assert answer.status_code == 200 and answer.headers["content-type"] == kind and answer.text

    restored = json_of(http.post(f"/v1/repos/{repo}/branches/main/restore", json={"rev": first, "author": author_json()}))
    assert restored["parent"] == third["commit"]
    pruned = json_of(http.post(f"/v1/repos/{repo}/branches/main/prune", json={"retention": {"keepLast": 2}, "countDropped": True}))
    assert pruned["dropped"] == 2 and pruned["newHead"] == server.head(repo)
    assert repo in [r["repo"] for r in json_of(http.get("/v1/footprint"))["repos"]]
    assert "deleted" in json_of(http.post("/v1/gc"))
    assert json_of(http.post("/v1/compact", json={"minLoose": 10_000_000}))["pack"] is None
    assert json_of(http.delete(f"/v1/repos/{repo}")) == {"deleted": [server.ref(repo)]}
    server.fsck()


# Routes that read a JSON body, with a body of the right shape.
def body_routes(repo: str) -> List[Tuple[str, Dict[str, object]]]:
    return [
        ("/v1/repos", {"repo": new_name("never"), "author": author_json()}),
        (f"/v1/repos/{repo}/branches", {"branch": "never"}),
        (f"/v1/repos/{repo}/branches/main/commits", {"changes": [{"type": "put", "path": "never", "data": "x"}], "author": author_json(), "message": "m"}),
        (f"/v1/repos/{repo}/branches/main/restore", {"rev": "main", "path": "b.txt", "author": author_json()}),
        (f"/v1/repos/{repo}/branches/main/prune", {"retention": {"keepLast": 1}}),
        (f"/v1/repos/{repo}/read", {"paths": ["b.txt"]}),
        ("/v1/gc", {"graceMs": 3_600_000}),
        ("/v1/compact", {"minLoose": 10_000_000}),
    ]


@pytest.fixture
def unchanged(server: Server) -> Iterator[None]:
    """The test writes nothing: every ref is where it was."""
    before = server.refs()
    yield
    assert server.refs() == before


@pytest.mark.parametrize("n", range(8))
@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1', b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_bad_json_is_invalid_input(http: httpx.Client, repo: str, unchanged: None, n: int, body: bytes):
    route, _ = body_routes(repo)[n]
    problem(http.post(route, content=body, headers={"content-type": "application/json"}), 400, "INVALID_INPUT")


# A field of the wrong type for each route.
WRONG_TYPES = [
    (0, {"repo": 5}),
    (0, {"files": "a.md"}),
    (0, {"author": "me"}),
    (1, {"branch": ["x"]}),
    (1, {"start": "main"}),
    (2, {"changes": {"type": "put"}}),
    (2, {"message": 5}),
    (2, {"expectedHead": 5}),
    (2, {"maxAttempts": "many"}),
    (2, {"repo": 5}),
    (2, {"changes": [{"type": "put", "path": 5, "data": "x"}]}),
    (2, {"changes": [{"type": "put", "path": "x", "data": 5}]}),
    (2, {"changes": [{"type": "put", "path": "x", "data": {"base64": "!!"}}]}),
    (2, {"changes": [{"type": "put", "path": "x", "data": "x", "mode": "tree"}]}),
    (2, {"changes": [{"type": "chmod", "path": "x"}]}),
    (2, {"author": {"name": "a", "email": "b", "time": "now"}}),
    (3, {"rev": 5}),
    (3, {"path": ["b.txt"]}),
    (4, {"retention": "last 2"}),
    (4, {"retention": {"keepLast": -1}}),
    (5, {"paths": "b.txt"}),
    (5, {"rev": 5}),
    (5, {"paths": ["b.txt"], "folder": "notes"}),
    (6, {"graceMs": "1h"}),
    (7, {"window": "wide"}),
]


@pytest.mark.parametrize("n, fields", WRONG_TYPES)
def test_wrong_types_are_invalid_input(http: httpx.Client, repo: str, unchanged: None, n: int, fields: Dict[str, object]):
    route, body = body_routes(repo)[n]
    problem(http.post(route, json={**body, **fields}), 400, "INVALID_INPUT")


def test_a_body_that_names_another_repo_or_branch_is_refused(http: httpx.Client, repo: str, unchanged: None):
    for n, fields in [(1, {"repo": "other"}), (2, {"repo": "other"}), (2, {"branch": "other"}), (3, {"branch": "other"}), (4, {"repo": "other"})]:
        route, body = body_routes(repo)[n]
        assert problem(http.post(route, json={**body, **fields}), 400, "INVALID_INPUT")["value"] == "other"


def test_ndjson_errors(http: httpx.Client, repo: str, unchanged: None):
    route = f"/v1/repos/{repo}/branches/main/commits"
    head = {"author": author_json(), "message": "m"}
    nd = {"content-type": "application/x-ndjson"}
    for content, says in [
        (b"", "empty"),
        (b"{not json\n", "line 1"),
        (ndjson([head]) + b"{not json\n", "line 2"),
        (ndjson([head, {"type": "put", "path": "x"}]), "line 2"),
        (ndjson([head, {"type": "put", "path": "../x", "data": "x"}]), "../x"),
        (ndjson([["not", "an", "object"]]), "line 1"),
    ]:
        assert says in problem(http.post(route, content=content, headers=nd), 400, "INVALID_INPUT")["detail"]


BAD_REPO = "Bad%20Name"


def repo_routes(repo: str) -> List[Tuple[str, str, Optional[Dict[str, object]]]]:
    author = author_json()
    return [
        ("DELETE", f"/v1/repos/{repo}", None),
        ("GET", f"/v1/repos/{repo}/branches", None),
        ("POST", f"/v1/repos/{repo}/branches", {"branch": "x"}),
        ("GET", f"/v1/repos/{repo}/branches/main", None),
        ("DELETE", f"/v1/repos/{repo}/branches/main", None),
        ("POST", f"/v1/repos/{repo}/branches/main/commits", {"changes": [{"type": "put", "path": "x", "data": "x"}], "author": author, "message": "m"}),
        ("POST", f"/v1/repos/{repo}/branches/main/restore", {"rev": "main", "author": author}),
        ("POST", f"/v1/repos/{repo}/branches/main/prune", {"retention": {"keepLast": 1}}),
        ("GET", f"/v1/repos/{repo}/files/b.txt", None),
        ("POST", f"/v1/repos/{repo}/read", {"paths": ["b.txt"]}),
        ("GET", f"/v1/repos/{repo}/tree", None),
        ("GET", f"/v1/repos/{repo}/tree/notes", None),
        ("GET", f"/v1/repos/{repo}/log", None),
        ("GET", f"/v1/repos/{repo}/commits/main", None),
        ("GET", f"/v1/repos/{repo}/diff", None),
    ]


@pytest.mark.parametrize("n", range(15))
@pytest.mark.parametrize("name", [BAD_REPO, "a..b", "-dash", "x.lock", "%2E%2E", "a%2Fb"])
def test_bad_repo_names_are_invalid_input(http: httpx.Client, unchanged: None, n: int, name: str):
    method, route, body = repo_routes(name)[n]
    problem(http.request(method, route, json=body), 400, "INVALID_INPUT")


def test_bad_repo_names_in_a_body_are_invalid_input(http: httpx.Client, unchanged: None):
    for name in ["bad name", "../x", "a/b", "", "x.lock", "a..b"]:
        problem(http.post("/v1/repos", json={"repo": name, "author": author_json()}), 400, "INVALID_INPUT")


def test_bad_branch_names_are_invalid_input(http: httpx.Client, repo: str, unchanged: None):
    for name in ["a..b", "x.lock", "a%20b", "%2E%2E", "-x"]:
        problem(http.get(f"/v1/repos/{repo}/branches/{name}"), 400, "INVALID_INPUT")
        problem(http.post(f"/v1/repos/{repo}/branches/{name}/commits", json={"changes": [], "author": author_json(), "message": "m"}), 400, "INVALID_INPUT")
    for name in ["a..b", "a b", "x.lock", "", "refs/../x"]:
        problem(http.post(f"/v1/repos/{repo}/branches", json={"branch": name}), 400, "INVALID_INPUT")


def test_paths_that_escape_are_invalid_input(http: httpx.Client, repo: str, unchanged: None):
    author = author_json()
    commits = f"/v1/repos/{repo}/branches/main/commits"
    for bad in ["../x", "a/../../x", "./x", "/abs", "a//b", ".git/config", "x/.git", "a\u0000b"]:
        quoted = bad.replace("%", "%25").replace(".", "%2E").replace("\u0000", "%00")
        for method, route, body in [
            ("POST", commits, {"changes": [{"type": "put", "path": bad, "data": "x"}], "author": author, "message": "m"}),
            ("POST", commits, {"changes": [{"type": "delete", "path": bad}], "author": author, "message": "m"}),
            ("POST", commits, {"changes": [{"type": "rename", "from": "b.txt", "to": bad}], "author": author, "message": "m"}),
            ("POST", "/v1/repos", {"repo": new_name("never"), "files": [{"type": "put", "path": bad, "data": "x"}], "author": author}),
            ("POST", f"/v1/repos/{repo}/branches/main/restore", {"rev": "main", "path": bad, "author": author}),
            ("POST", f"/v1/repos/{repo}/read", {"paths": [bad]}),
            ("POST", f"/v1/repos/{repo}/read", {"folder": bad}),
            ("GET", f"/v1/repos/{repo}/log?path={quoted}", None),
            ("GET", f"/v1/repos/{repo}/diff?path={quoted}", None),
            ("GET", f"/v1/repos/{repo}/commits/main?path={quoted}", None),
        ]:
            problem(http.request(method, route, json=body), 400, "INVALID_INPUT")
    for quoted in ["%2E%2E/x", "a/%2E%2E/%2E%2E/x", "%2E/x", "%2Egit/config"]:
        problem(http.get(f"/v1/repos/{repo}/files/{quoted}"), 400, "INVALID_INPUT")
        problem(http.get(f"/v1/repos/{repo}/tree/{quoted}"), 400, "INVALID_INPUT")


@pytest.mark.parametrize("rev", ["nope", "main~99", ID, "0000000"])
def test_unknown_revisions_are_not_found(http: httpx.Client, repo: str, unchanged: None, rev: str):
    author = author_json()
    for method, route, body in [
        ("GET", f"/v1/repos/{repo}/files/b.txt?rev={rev}", None),
        ("POST", f"/v1/repos/{repo}/read", {"rev": rev, "paths": ["b.txt"]}),
        ("GET", f"/v1/repos/{repo}/tree?rev={rev}", None),
        ("GET", f"/v1/repos/{repo}/tree/notes?rev={rev}", None),
        ("GET", f"/v1/repos/{repo}/log?rev={rev}", None),
        ("GET", f"/v1/repos/{repo}/commits/{rev}", None),
        ("GET", f"/v1/repos/{repo}/diff?from={rev}", None),
        ("GET", f"/v1/repos/{repo}/diff?to={rev}", None),
        ("POST", f"/v1/repos/{repo}/branches/main/restore", {"rev": rev, "author": author}),
    ]:
        assert problem(http.request(method, route, json=body), 404, "NOT_FOUND")["value"] == rev, route


def test_unknown_repos_and_branches_are_not_found(http: httpx.Client, repo: str, unchanged: None):
    for method, route, body in repo_routes(new_name("none")):
        if route.endswith("/branches") and method == "POST":
            continue  # checked below: the start branch is what is missing
        assert problem(http.request(method, route, json=body), 404, "NOT_FOUND"), route
    problem(http.post(f"/v1/repos/{repo}/branches", json={"branch": "x", "start": {"branch": "nope"}}), 404, "NOT_FOUND")
    for method, route in [("GET", "branches/nope"), ("DELETE", "branches/nope"), ("POST", "branches/nope/prune")]:
        problem(http.request(method, f"/v1/repos/{repo}/{route}", json={"retention": {"keepLast": 1}} if method == "POST" else None), 404, "NOT_FOUND")


def test_bad_query_values_are_invalid_input(http: httpx.Client, repo: str):
    problem(http.get(f"/v1/repos/{repo}/log", params={"limit": 0}), 400, "INVALID_INPUT")
    problem(http.get(f"/v1/repos/{repo}/log", params={"cursor": "zz"}), 400, "INVALID_INPUT")
    problem(http.get(f"/v1/repos/{repo}/diff", params={"format": "xml"}), 400, "INVALID_INPUT")
    problem(http.get(f"/v1/repos/{repo}/commits/main", params={"from": "main~1"}), 400, "INVALID_INPUT")


@pytest.mark.parametrize("route", ["files/b.txt?bogus=1", "log?limit=abc", "tree?recursive=yes", "diff?renames=maybe"])
def test_query_strings_that_do_not_read_are_problems(http: httpx.Client, repo: str, route: str):
    problem(http.get(f"/v1/repos/{repo}/{route}"), 400, "INVALID_INPUT")


def test_a_misspelt_expected_head_is_refused(http: httpx.Client, server: Server, repo: str):
    head = server.head(repo)
    body = {"changes": [{"type": "put", "path": "x", "data": "x"}], "author": author_json(), "message": "m", "expected_head": ID}
    try:
        problem(http.post(f"/v1/repos/{repo}/branches/main/commits", json=body), 400, "INVALID_INPUT")
    finally:
        assert server.head(repo) == head


def test_wrong_methods(http: httpx.Client, repo: str):
    for method, route in [("PUT", "/v1/repos"), ("PATCH", f"/v1/repos/{repo}/branches/main"), ("GET", f"/v1/repos/{repo}/read"), ("DELETE", "/v1/gc")]:
        assert http.request(method, route).status_code == 405


def test_unknown_routes_are_problems(http: httpx.Client):
    problem(http.get("/v1/nope"), 404, "NOT_FOUND")
