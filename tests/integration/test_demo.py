"""Must-show 9: the README's demo command, run as a new user would, exits 0 with an answer."""

from __future__ import annotations

import os
import re
import subprocess

from tests.support.stack import REPO


def readme_command(comment: str) -> str:
    """The README command line whose trailing comment contains `comment`."""
    readme = (REPO / "README.md").read_text()
    for line in re.findall(r"^\s*(\S.*?#.*)$", readme, flags=re.MULTILINE):
        command, _, note = line.partition("#")
        if comment in note:
            return command.strip()
    raise AssertionError(f"README has no command marked {comment!r}")


def test_readme_demo_command_prints_the_answer() -> None:
    command = readme_command("the end-to-end demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPHRELAY_", "VIRTUAL_ENV"))}

    done = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "suspended on index_documents (cpu queue" in out
    assert "resumed after index_documents finished" in out
    assert "final answer" in out
    assert "I indexed the documentation in the background" in out
    assert "task index running" in out and "task api running" in out
    assert "suspended on fetch_url (io queue)" in out
    assert "plan-and-execute answer" in out
    assert "children stopped" in out
