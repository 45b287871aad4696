"""The examples of README.md, run as a reader pastes them, against a server of their own.

A block marked ``<!-- example: file=NAME run="python NAME" -->`` is saved and run in one
folder, in order, with ``SNAPGIT_URL`` set to the server; an ``<!-- output -->`` block
after it is what it must print, a line ``...`` standing for any lines (the rules of the
repository's scripts/examples.mjs, which runs the page's shell blocks too when given it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from conftest import Server

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(text: str) -> List[Tuple[Optional[str], str, str]]:
    """(marker, language, code) of each fenced block."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = lines.index("```", i + 1)
        marker = lines[i - 1].strip() if i > 0 and lines[i - 1].startswith("<!--") else None
        out.append((marker, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return out


def matches(actual: str, expected: str) -> bool:
    a = [line.rstrip() for line in actual.rstrip().split("\n")]
    e = [line.rstrip() for line in expected.rstrip().split("\n")]

    def at(i: int, j: int) -> bool:
        if j == len(e):
            return i == len(a)
        if e[j] == "...":
            return any(at(k, j + 1) for k in range(i, len(a) + 1))
        return i < len(a) and a[i] == e[j] and at(i + 1, j + 1)

    return at(0, 0)


EXAMPLES = []
for marker, lang, code in blocks(README.read_text()):
    if lang == "python" and marker and marker.startswith("<!-- example"):
        name = re.search(r"file=(\S+)", marker).group(1)
        EXAMPLES.append([name, code, None])
    elif marker == "<!-- output -->" and EXAMPLES:
        EXAMPLES[-1][2] = code


def test_every_python_block_is_run_or_says_why_not():
    for marker, lang, _ in blocks(README.read_text()):
        if lang and lang != "text":
            assert marker and (marker.startswith("<!-- example") or marker.startswith("<!-- not-run: ")), (lang, marker)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Server, Path]]:
    s = Server(tmp_path_factory.mktemp("readme-server"))
    yield s, tmp_path_factory.mktemp("readme")
    s.stop()


@pytest.mark.parametrize("name, code, output", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example(session: Tuple[Server, Path], name: str, code: str, output: Optional[str]):
    server, folder = session
    (folder / name).write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPGIT_")}
    env["SNAPGIT_URL"] = server.url
    run = subprocess.run([sys.executable, name], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    if output is not None:
        assert matches(run.stdout, output), f"{name} printed:\n{run.stdout}\nnot:\n{output}"
    server.fsck()
