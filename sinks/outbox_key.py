"""The outbox's key: webhook URLs given at run time are stored encrypted, the key lives outside.

Webhook URLs carry their secret in the path or query (Discord, Slack, Home
Assistant tokens), so the outbox database must not hold them in clear: it
would be a secret file itself. An event of a webhook from the config stores a
*reference* to its sink (the sink's name, and the URL's secret-free label such
as ``https://discord.com/...``): the URL is in the config already. An event of
a webhook given at run time (no config to refer to) stores the URL encrypted
with a key kept in a file next to the database (``<database>.key``, created
0600). Which endpoint a sink disabled (HTTP 410) is kept as a keyed
fingerprint, not the URL.

Primitive: Fernet from the ``cryptography`` package (AES-128-CBC with
HMAC-SHA256, encrypt-then-MAC, random IV): an authenticated, well-reviewed and
maintained recipe with a stable token format. The standard library has no
authenticated cipher, and a home-made construction is the kind of thing that
goes wrong quietly. The fingerprint is HMAC-SHA256 under a key derived from
the same file.

Losing the key file loses nothing that delivery needs (a sink always POSTs to
its own URL): listings show ``<encrypted URL: key file missing>`` for old
events, and a disabled endpoint is enabled again.

Example:
    >>> key = OutboxKey.generate()
    >>> stored = key.seal("https://discord.com/api/webhooks/1/tok")
    >>> stored.startswith("fernet:"), key.unseal(stored)
    (True, 'https://discord.com/api/webhooks/1/tok')
    >>> reference("https://discord.com/api/webhooks/1/tok")
    'sink:https://discord.com/...'
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pipeline.net.urls import endpoint_label

log = logging.getLogger(__name__)

SEALED = "fernet:"
"""Prefix of an encrypted URL in the ``url`` column."""
REFERENCE = "sink:"
"""Prefix of a reference to the sink's own URL (followed by its secret-free label)."""
FINGERPRINT = "hmac:"
"""Prefix of a disabled endpoint's fingerprint in the ``endpoints`` table."""


def reference(url: str) -> str:
    """The ``url`` column of an event whose sink has the URL in its config: no secret in it."""
    return REFERENCE + endpoint_label(url)


def key_path(database: Path) -> Path:
    """Where the key of ``database`` lives: ``<database>.key`` next to it."""
    return database.with_name(database.name + ".key")


class OutboxKey:
    """Seals and opens run-time webhook URLs, and fingerprints endpoints.

    Args:
        key: a Fernet key (32 bytes, url-safe base64).
    """

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._mac_key = hmac.new(key, b"lookout-outbox-endpoint", hashlib.sha256).digest()

    @classmethod
    def generate(cls) -> OutboxKey:
        """A fresh key kept in memory only (``:memory:`` outboxes, tests)."""
        return cls(Fernet.generate_key())

    @classmethod
    def for_database(cls, database: Path) -> OutboxKey:
        """Load the key file next to ``database``, creating it (0600) when missing.

        A key file that others may read is narrowed to 0600, with a warning.

        Raises:
            OSError: the key file cannot be read or created.
            ValueError: the key file does not hold a Fernet key.
        """
        path = key_path(database)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                log.warning("outbox key %s was readable by others (%o); now 0600", path, mode)
                path.chmod(0o600)
            key = path.read_bytes().strip()
            try:
                return cls(key)
            except ValueError:
                raise ValueError(f"{path} does not hold an outbox key (Fernet).") from None
        key = Fernet.generate_key()
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
        return cls(key)

    def seal(self, url: str) -> str:
        """The ``url`` column of an encrypted URL."""
        return SEALED + self._fernet.encrypt(url.encode()).decode()

    def unseal(self, stored: str) -> str | None:
        """The URL of an encrypted ``url`` column, or None when this key cannot open it."""
        if not stored.startswith(SEALED):
            return None
        with contextlib.suppress(InvalidToken, ValueError):
            return self._fernet.decrypt(stored[len(SEALED) :].encode()).decode()
        return None

    def fingerprint(self, url: str) -> str:
        """A keyed fingerprint of ``url``: equal for equal URLs, useless without the key."""
        return FINGERPRINT + hmac.new(self._mac_key, url.encode(), hashlib.sha256).hexdigest()

    def label(self, stored: str) -> tuple[str | None, str]:
        """(URL or None, secret-free label) of a stored ``url`` column.

        Example:
            >>> OutboxKey.generate().label("sink:https://example.com/...")
            (None, 'https://example.com/...')
        """
        if stored.startswith(REFERENCE):
            return None, stored[len(REFERENCE) :]
        url = self.unseal(stored) if stored.startswith(SEALED) else stored
        if url is None:
            return None, "<encrypted URL: key file missing or changed>"
        return url, endpoint_label(url)


def seal_old_urls(db: sqlite3.Connection, key: OutboxKey) -> int:
    """Convert an outbox written before URLs were sealed; return how many rows changed.

    Every URL in clear becomes sealed (it cannot be told whether its sink was
    from the config), every disabled endpoint a fingerprint; the old pages are
    then checkpointed out of the WAL (the connection runs with ``secure_delete``).
    """
    old = db.execute(
        "SELECT rowid, url FROM events WHERE substr(url, 1, ?) != ? AND substr(url, 1, ?) != ?",
        (len(REFERENCE), REFERENCE, len(SEALED), SEALED),
    ).fetchall()
    hooks = db.execute(
        "SELECT sink, url FROM endpoints WHERE substr(url, 1, ?) != ?",
        (len(FINGERPRINT), FINGERPRINT),
    ).fetchall()
    if not old and not hooks:
        return 0
    db.execute("BEGIN IMMEDIATE")
    for rowid, url in old:
        db.execute("UPDATE events SET url=? WHERE rowid=?", (key.seal(url), rowid))
    for sink, url in hooks:
        db.execute(
            "UPDATE OR REPLACE endpoints SET url=? WHERE sink=? AND url=?",
            (key.fingerprint(url), sink, url),
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the old pages leave the WAL too
    return len(old) + len(hooks)
