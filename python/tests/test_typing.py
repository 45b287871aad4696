"""The package type-checks under mypy --strict, and a client's methods carry their
builders' signatures and results (the one definition both clients share)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is in the test extra")

SRC = Path(__file__).resolve().parent.parent / "src" / "snapgit"

USE = '''
from snapgit import AsyncClient, Client, Put

def use(c: Client, a: AsyncClient) -> None:
    reveal_type(c.commit("r", [Put("a", "b")], message="m"))
    reveal_type(c.read_file_if_changed("r", "a", "etag"))
    reveal_type(a.log)
    c.commit("r", {"a": "b"}, mesage="m")
    c.read_head("r", branch=5)

async def walk(a: AsyncClient) -> None:
    async for commit in a.iter_log("r"):
        reveal_type(commit)
'''


def mypy(*args: str, cwd: Path) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(cwd / ".mypy"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    return run.stdout + run.stderr


def test_the_package_is_strictly_typed(tmp_path: Path):
    out = mypy("--strict", str(SRC), cwd=tmp_path)
    assert "Success: no issues found" in out, out


def test_methods_have_their_routes_signatures(tmp_path: Path):
    (tmp_path / "use.py").write_text(USE)
    out = mypy("use.py", cwd=tmp_path)
    assert 'Revealed type is "snapgit.types.CommitResult"' in out, out
    assert re.search(r'Revealed type is "(snapgit.types.File \| None|Union\[snapgit.types.File, None\])"', out), out
    assert "-> typing.Awaitable[snapgit.types.LogPage]" in out, out
    assert 'Revealed type is "snapgit.types.CommitInfo"' in out, out
    assert 'Unexpected keyword argument "mesage"' in out, out
    assert 'Argument "branch" has incompatible type "int"; expected "str"' in out, out
