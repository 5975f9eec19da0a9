"""The console's throw-away database: a temp SQLite file, or a scratch PostgreSQL database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass
class ScratchDatabase:
    url: str  # DATABASE_URL for the child processes
    vendor: str  # "sqlite" or "postgresql"
    _admin_url: str | None = None
    _name: str | None = None

    def drop(self) -> None:
        if self.vendor != "postgresql":
            return  # the temp directory goes with it
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


def create(server_url: str | None, workdir: Path) -> ScratchDatabase:
    """`server_url` None or sqlite: a fresh SQLite file in `workdir`. A postgres:// URL names the server
    (its database part is only used to connect); we create `bench_<pid>` there and drop it afterwards.
    Never anything else on that server is touched."""
    if not server_url or server_url.startswith("sqlite"):
        return ScratchDatabase(url=f"sqlite:///{workdir / 'console.sqlite3'}", vendor="sqlite")
    import psycopg

    parts = urlsplit(server_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r} (sqlite or postgres)")
    name = f"bench_{os.getpid()}"
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    return ScratchDatabase(url=url, vendor="postgresql", _admin_url=admin, _name=name)
