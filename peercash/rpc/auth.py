"""RPC credentials: the ``.cookie`` file, ``rpcuser``/``rpcpassword`` and ``rpcauth`` entries.

As Core: with no ``rpcpassword`` the node writes ``__cookie__:<64 hex>`` to ``.cookie`` in the
network's data directory (mode 0600, via a temporary file and a rename) and deletes it at
shutdown. Every accepted credential is kept as ``(user, salt, HMAC-SHA256(salt, password))`` and
compared in constant time; ``rpcauth=user:salt$hash`` entries are taken as given (share/rpcauth's
format), plaintext ones are hashed with a fresh random salt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

COOKIE_USER = "__cookie__"
COOKIE_NAME = ".cookie"


def _hmac_hex(salt: str, password: str) -> str:
    return hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()


def make_rpcauth(user: str, password: str, salt: str | None = None) -> str:
    """An ``rpcauth`` line for ``user``/``password`` (what Core's share/rpcauth prints)."""
    salt = salt if salt is not None else secrets.token_hex(16)
    return f"{user}:{salt}${_hmac_hex(salt, password)}"


def write_cookie(datadir: Path) -> tuple[Path, str]:
    """Write a fresh cookie; returns its path and the ``user:password`` it holds."""
    password = secrets.token_hex(32)
    text = f"{COOKIE_USER}:{password}"
    path = datadir / COOKIE_NAME
    tmp = datadir / (COOKIE_NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path, text


def read_cookie(datadir: Path) -> str | None:
    """The ``user:password`` in ``.cookie``, or None when there is none."""
    try:
        text = (datadir / COOKIE_NAME).read_text(encoding="utf-8")
    except OSError:
        return None
    line = text.splitlines()[0] if text else ""
    return line or None


def delete_cookie(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class RpcAuth:
    """Checks ``Authorization: Basic …`` headers against the accepted credentials."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str, str]] = []

    def add_password(self, user: str, password: str) -> None:
        salt = secrets.token_hex(16)
        self._entries.append((user, salt, _hmac_hex(salt, password)))

    def add_rpcauth(self, user: str, salt: str, hmac_hex: str) -> None:
        self._entries.append((user, salt, hmac_hex.lower()))

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, header: str | None) -> str | None:
        """The user name when ``header`` carries valid credentials, else None."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
            text = decoded.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, password = text.partition(":")
        if not sep:
            return None
        ok = False
        for e_user, salt, expected in self._entries:
            # Look at every entry and compare in constant time, so timing tells nothing.
            same_user = hmac.compare_digest(e_user.encode(), user.encode())
            same_hash = hmac.compare_digest(_hmac_hex(salt, password), expected)
            ok |= same_user and same_hash
        return user if ok else None
