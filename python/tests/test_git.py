"""The store stays plain git: git reads what the client wrote, and the client reads and
builds on what git wrote."""

from __future__ import annotations

import os
import subprocess

from conftest import Server

from snapgit import Client, Put


def test_git_reads_what_the_client_wrote(client: Client, server: Server, repo: str, tmp_path):
    client.commit(repo, [Put("tool.sh", "#!/bin/sh\necho hi\n", mode="executable"), Put("link", "tool.sh", mode="symlink")], message="modes")
    client.commit(repo, {"notes/a.md": "alpha\nbeta\n", "b.txt": None}, message="edit")
    head = client.read_head(repo)
    assert server.git("ls-tree", "-r", head).splitlines() == [
        f"120000 blob {client.read_file(repo, 'link').id}\tlink",
        f"100644 blob {client.read_file(repo, 'notes/a.md').id}\tnotes/a.md",
        f"100755 blob {client.read_file(repo, 'tool.sh').id}\ttool.sh",
    ]
    assert server.git("show", f"{head}:notes/a.md") == "alpha\nbeta\n"
    assert [c.id for c in client.iter_log(repo)] == server.log_ids(repo)
    assert [c.message.rstrip("\n") for c in client.iter_log(repo)] == server.git("log", "--format=%s", server.ref(repo)).splitlines()
    server.fsck()

    # A clone over serve's git remote holds the same files.
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(["git", "clone", "-q", f"{server.url}/{repo}.git", str(tmp_path / "clone")], check=True, env=env, capture_output=True)
    assert (tmp_path / "clone" / "notes" / "a.md").read_bytes() == b"alpha\nbeta\n"
    assert os.access(tmp_path / "clone" / "tool.sh", os.X_OK)


def test_the_client_builds_on_what_git_wrote(client: Client, server: Server, repo: str):
    ref = server.ref(repo)
    blob = subprocess.run(["git", "--git-dir", str(server.store), "hash-object", "-w", "--stdin"], input=b"from git\n", capture_output=True, check=True).stdout.decode().strip()
    tree_lines = server.git("ls-tree", ref) + f"100644 blob {blob}\tgit.md\n"
    tree = subprocess.run(["git", "--git-dir", str(server.store), "mktree"], input=tree_lines.encode(), capture_output=True, check=True).stdout.decode().strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": "Git", "GIT_AUTHOR_EMAIL": "git@example.com", "GIT_COMMITTER_NAME": "Git", "GIT_COMMITTER_EMAIL": "git@example.com"}
    commit = subprocess.run(
        ["git", "--git-dir", str(server.store), "commit-tree", tree, "-p", ref, "-m", "written by git"],
        capture_output=True, check=True, env=env,
    ).stdout.decode().strip()
    server.git("update-ref", ref, commit)

    assert client.read_head(repo) == commit
    assert client.read_file(repo, "git.md").data == b"from git\n"
    shown = client.show(repo)
    assert shown.commit.author.name == "Git" and [f.path for f in shown.diff.files] == ["git.md"]
    after = client.commit(repo, {"git.md": "from git\nand from the client\n"}, message="on top", expected_head=commit)
    assert after.parent == commit and after.files[0].additions == 1
    server.git("gc", "--quiet", "--prune=now")
    assert client.read_file(repo, "git.md").data == b"from git\nand from the client\n", "reads packs git made"
    client.commit(repo, {"after-gc.md": "x\n"}, message="after git gc")
    server.fsck()
