"""Fixtures: real ``snapgit serve`` processes over folder stores, clients, and git.

The binary is ``$SNAPGIT_BIN``. Each server listens on a free loopback port (``--listen
127.0.0.1:0``; the address is read from its first line on stderr) over a store made by
``snapgit --store DIR init``, and is stopped with SIGTERM at the end of its scope.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Dict, Iterator, List, Optional, Sequence

import httpx
import pytest

from snapgit import AsyncClient, Client, Signature

AUTHOR = Signature("Test Agent", "agent@example.com")


def snapgit_bin() -> str:
    path = os.environ.get("SNAPGIT_BIN")
    if not path:
        pytest.exit("SNAPGIT_BIN must name the snapgit binary (cargo build -p snapgit-host --bin snapgit)", returncode=4)
    if not os.access(path, os.X_OK):
        pytest.exit(f"SNAPGIT_BIN={path} is not an executable file", returncode=4)
    return path


class Server:
    """One ``snapgit serve`` over a folder store."""

    def __init__(self, root: Path, *args: str, env: Optional[Dict[str, str]] = None) -> None:
        self.root = root
        self.store = root / "store"
        self.log = root / "serve.log"
        self.bin = snapgit_bin()
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([self.bin, "--store", str(self.store), "init"], check=True, capture_output=True)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SNAPGIT_") or k == "SNAPGIT_BIN"}
        environ.update(env or {})
        self._err = open(self.log, "wb")
        self.process = subprocess.Popen(
            [self.bin, "--store", str(self.store), "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=environ,
        )
        self.url = self._wait_for_address()

    def _wait_for_address(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            found = re.search(r"http://(127\.0\.0\.1:\d+)/v1", text)
            if found:
                return f"http://{found.group(1)}"
            if self.process.poll() is not None:
                raise RuntimeError(f"snapgit serve exited ({self.process.returncode}):\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"snapgit serve did not say where it listens within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._err.close()

    # git, the oracle ------------------------------------------------------------------

    def git(self, *args: str, check: bool = True) -> str:
        """``git --git-dir <store> ARGS``'s stdout."""
        out = subprocess.run(
            ["git", "--git-dir", str(self.store), *args],
            check=check,
            capture_output=True,
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
        )
        return out.stdout.decode("utf-8", "surrogateescape")

    @staticmethod
    def ref(repo: str, branch: str = "main") -> str:
        """Where the store keeps a repo's branch: each repo is a git namespace."""
        return f"refs/namespaces/{repo}/refs/heads/{branch}"

    def head(self, repo: str, branch: str = "main") -> Optional[str]:
        out = self.git("rev-parse", "--verify", "-q", self.ref(repo, branch), check=False).strip()
        return out or None

    def refs(self) -> List[str]:
        """Every ref of the store with its id: a snapshot to compare before and after."""
        return self.git("for-each-ref", "--format=%(refname) %(objectname)").splitlines()

    def objects(self) -> List[str]:
        """Every object file and pack of the store."""
        base = self.store / "objects"
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def log_ids(self, repo: str, branch: str = "main", *extra: str) -> List[str]:
        return self.git("log", "--format=%H", *extra, self.ref(repo, branch)).split()

    def fsck(self) -> None:
        self.git("fsck", "--strict", "--no-progress")


def start_server(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str) -> Server:
    return Server(tmp_path_factory.mktemp(name), *args)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The development server (no tokens) most tests share; each test uses repos of its own."""
    s = start_server(tmp_path_factory, "dev")
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, author=AUTHOR) as c:
        yield c


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """Raw HTTP to the development server."""
    with httpx.Client(base_url=server.url, timeout=60) as h:
        yield h


def new_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def repo(client: Client) -> str:
    """A new repo with two files on main."""
    name = new_name()
    client.create_repo(name, {"notes/a.md": "alpha\n", "b.txt": "bravo\n"}, message="first")
    return name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def aclient(server: Server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, author=AUTHOR) as c:
        yield c


def problem(response: httpx.Response, status: int, code: str) -> Dict[str, object]:
    """Check that ``response`` is a problem+json with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:snapgit:error:{code}" and body["title"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def author_json() -> Dict[str, str]:
    return {"name": AUTHOR.name, "email": AUTHOR.email}


def ndjson(lines: Sequence[object]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)

