"""The server's OpenAPI document: it validates as OpenAPI 3.1, and the client's routes
and the document's are the same set."""

from __future__ import annotations

import re
from typing import Any, Dict, Set, Tuple

import httpx
from openapi_spec_validator import validate

from snapgit import _routes

from conftest import Server


def documented(server: Server) -> Tuple[Dict[str, Any], Set[Tuple[str, str]]]:
    document = httpx.get(f"{server.url}/openapi.json").json()
    routes = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    return document, routes


def test_the_document_validates(server: Server) -> None:
    document, routes = documented(server)
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert ("POST", "/v1/repos/{repo}/branches/{branch}/commits") in routes


def as_template(path: str) -> str:
    """A path the client built, its names put back as the document's parameters."""
    path = re.sub(r"^/v1/repos/[^/]+", "/v1/repos/{repo}", path.split("?")[0])
    path = re.sub(r"^(/v1/repos/\{repo\}/branches)/[^/]+", r"\1/{branch}", path)
    path = re.sub(r"^(/v1/repos/\{repo\}/(files|tree))/.+", r"\1/{path}", path)
    return re.sub(r"^(/v1/repos/\{repo\}/commits)/[^/]+", r"\1/{rev}", path)


def test_the_client_calls_every_documented_route_and_no_other(server: Server) -> None:
    _, routes = documented(server)
    calls = [
        _routes.list_repos(),
        _routes.create_repo("r", {"a.md": "a"}),
        _routes.delete_repo("r"),
        _routes.list_branches("r"),
        _routes.create_branch("r", "b"),
        _routes.read_head("r", "b"),
        _routes.delete_branch("r", "b"),
        _routes.commit("r", {"a.md": "a"}, message="m"),
        _routes.restore("r", "main~1"),
        _routes.prune("r", keep_last=3),
        _routes.read_file("r", "notes/a.md"),
        _routes.read_files("r", ["a.md"]),
        _routes.list_tree("r"),
        _routes.list_tree("r", "notes"),
        _routes.log("r"),
        _routes.show("r", "main"),
        _routes.diff("r"),
        _routes.footprint(),
        _routes.gc(),
        _routes.compact(),
        _routes.cap(max_bytes=1),
    ]
    called = {(call.method, as_template(call.path)) for call in calls}
    assert called == routes, (sorted(called - routes), sorted(routes - called))
