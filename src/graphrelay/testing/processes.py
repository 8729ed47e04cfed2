"""Starting and stopping graphrelay's own processes as children (demo and tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    args: list[str], env: Mapping[str, str], log_file: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m graphrelay ARGS` with its output in `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "graphrelay", *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until `base_url/healthz` answers; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"API exited with code {process.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"API at {base_url} not ready after {timeout} s")


def wait_for_log(
    log_file: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Wait until `text` appears in `log_file` (e.g. a worker's ready line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}; see {log_file}")
        if log_file.exists() and text in log_file.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} not in {log_file} after {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it lingers."""
    stop_all([process], timeout)


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 15) -> None:
    """Stop several children at once: SIGTERM every group, then SIGKILL whoever lingers."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@contextlib.contextmanager
def stopping(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stop every process in the list when the block ends, however it ends."""
    try:
        yield
    finally:
        stop_all(processes)
