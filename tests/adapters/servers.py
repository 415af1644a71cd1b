"""Start real servers (gunicorn, uvicorn) on free loopback ports, and talk raw HTTP to them."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_path(directory: Path) -> str:
    """``directory`` first, then whatever the test run itself imports from (so a server runs
    the same code as the test, whichever tree that is)."""
    return os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))


def gunicorn(target: str, port: int, *, workers: int = 2, worker_class: str = "sync") -> list[str]:
    return [
        PYTHON, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", worker_class, "--log-level", "warning",
    ]  # fmt: skip


def uvicorn(target: str, port: int) -> list[str]:
    return [
        PYTHON, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def running(
    command: list[str], port: int, env: Mapping[str, str], log: Path, ready: str = "/"
) -> Iterator[str]:
    """Run ``command`` until the block ends; yields the base URL once ``ready`` answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()}")
            try:
                if httpx.get(base + ready, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server never answered: {log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes exactly as given and read one response: for what HTTP clients won't do."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def chunked(body: bytes, size: int = 16_384) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
