"""Start and stop real redis-server and PostgreSQL processes on free loopback ports.

Shared by the store fixtures and ``benchmarks/stores.py``. Every server is a child process we
started; it is stopped by its PID, never by name.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _root_conftest() -> ModuleType:
    """tests/conftest.py as a module (both conftests are named ``conftest``, so no import)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(ROOT_CONFTEST):
            return module
    spec = importlib.util.spec_from_file_location("_codat_tests_root_conftest", ROOT_CONFTEST)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def missing_service(what: str) -> None:
    """tests/conftest.py's ``missing_service``: skip locally, fail in CI."""
    _root_conftest().missing_service(what)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(check: object, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{what} did not start within {timeout}s")


# --- Redis ------------------------------------------------------------------------------------

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    port: int | None = None, *, directory: str | os.PathLike[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server; returns the process and its URL.

    Without ``directory`` nothing is persisted. With one, every write is fsynced to an
    append-only file there, so a restart on the same directory keeps the data.
    """
    assert REDIS_SERVER is not None
    port = port or free_port()
    if directory is None:
        persistence = ["--appendonly", "no"]
    else:
        persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory)]
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         *persistence, "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait(lambda: _redis_answers(port), process, "redis-server", 20)
    return process, f"redis://127.0.0.1:{port}/0"


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


PG_BIN = _pg_bin()
PG_USER = "nobody"
"""initdb refuses to run as root, so as root the cluster belongs to this unprivileged user."""


@dataclass
class Postgres:
    process: subprocess.Popen[bytes]
    directory: str
    port: int
    arguments: tuple[str, ...] = ()
    """What ``postgres`` was started with, for :meth:`restart`."""
    user: str | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): SIGTERM's smart shutdown waits for every client to leave,
        which a pool never does by itself, so each stop cost the 10 s of :func:`stop`'s wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def halt(self) -> None:
        """Stop the server (a fast shutdown: clients are cut off), keeping its data."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)

    def restart(self) -> None:
        """Start the halted server again on the same port and data."""
        assert PG_BIN is not None
        command = [str(PG_BIN / "postgres"), *self.arguments]
        self.process = subprocess.Popen(
            command, user=self.user, cwd=self.directory,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: _pg_answers(self.dsn()), self.process, "postgres", 60)


def _pg_answers(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


def start_postgres(*, durable: bool = False) -> Postgres:
    """initdb into a fresh temp dir and run ``postgres`` on a free loopback port.

    ``durable=False`` turns fsync off: tests check behaviour, not crash safety of the disk.
    """
    assert PG_BIN is not None
    directory = tempfile.mkdtemp(prefix="codat-webhooks-pg-")
    user: str | None = None
    if os.geteuid() == 0:
        user = PG_USER
        entry = pwd.getpwnam(PG_USER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data = os.path.join(directory, "data")
    subprocess.run(
        [str(PG_BIN / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
         "-E", "UTF8", "--locale=C"],
        check=True, user=user, cwd=directory,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    port = free_port()
    settings = ["-c", "max_connections=60", "-c", "shared_buffers=32MB"]
    if not durable:
        settings += [
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
    arguments = ("-D", data, "-k", directory, "-h", "127.0.0.1", "-p", str(port), *settings)
    process = subprocess.Popen(
        [str(PG_BIN / "postgres"), *arguments],
        user=user, cwd=directory,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Postgres(process, directory, port, arguments, user)
    try:
        _wait(lambda: _pg_answers(server.dsn()), process, "postgres", 60)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    process, url = start_redis()
    try:
        yield url
    finally:
        stop(process)


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[Postgres]:
    server = start_postgres(durable=durable)
    try:
        yield server
    finally:
        server.stop()
