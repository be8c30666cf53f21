"""Logging for the node process: ``debug.log`` with size-based rotation, debug categories, and a
concise console log.

Categories follow Core's ``-debug=<category>``: each names a few Python loggers; enabling one lets
their DEBUG records through (to ``debug.log`` and, when printing to the console, the console).
``-debug=1`` / ``-debug=all`` enables every category; ``0`` / ``none`` none. The ``logging`` RPC
switches categories at run time through ``LogControl``.

Not thread-safe in its switching (the node calls it from the event loop thread); the handlers
themselves are the standard library's and may be used from any thread.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from collections.abc import Iterable
from pathlib import Path

# Category -> the loggers it covers. Keep names Core's where Core has the same category.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "net": ("peercash.p2p",),
    "rpc": ("peercash.rpc",),
    "http": ("peercash.http", "aiohttp.access", "aiohttp.server", "aiohttp.web"),
    "validation": ("peercash.chain.validation", "peercash.validation"),
    "chain": ("peercash.chain",),
    "coindb": ("peercash.chain.coins",),
    "blockstorage": ("peercash.chain.blockstore",),
    "mempool": ("peercash.mempool",),
    "mining": ("peercash.mining",),
    "wallet": ("peercash.wallet",),
    "bench": ("peercash.bench",),
}

ALL_WORDS = frozenset({"1", "all"})
NONE_WORDS = frozenset({"0", "none"})

DEBUG_LOG_NAME = "debug.log"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5


class UnknownCategoryError(ValueError):
    def __init__(self, category: str) -> None:
        super().__init__(f"unknown logging category {category}")
        self.category = category


def expand_categories(words: Iterable[str]) -> set[str]:
    """The categories that ``words`` name: ``1``/``all`` is every one, ``0``/``none`` none."""
    out: set[str] = set()
    for w in words:
        w = w.strip().lower()
        if w in ALL_WORDS:
            out.update(CATEGORIES)
        elif w in NONE_WORDS or w == "":
            continue
        elif w in CATEGORIES:
            out.add(w)
        else:
            raise UnknownCategoryError(w)
    return out


def _category_of(logger_name: str) -> str | None:
    best: tuple[int, str] | None = None
    for cat, names in CATEGORIES.items():
        for n in names:
            if (logger_name == n or logger_name.startswith(n + ".")) and (
                best is None or len(n) > best[0]
            ):
                best = (len(n), cat)
    return best[1] if best else None


class _FileFormatter(logging.Formatter):
    """``2024-05-01T12:00:00Z [category] message``, as Core's debug.log."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        cat = _category_of(record.name)
        parts = [stamp]
        if record.levelno <= logging.DEBUG and cat:
            parts.append(f"[{cat}]")
        if record.levelno >= logging.WARNING:
            parts.append(f"[{record.levelname.lower()}]")
        text = " ".join(parts) + " " + record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _ConsoleFormatter(logging.Formatter):
    """``12:00:00 message``; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        prefix = ""
        if record.levelno >= logging.ERROR:
            prefix = "error: "
        elif record.levelno >= logging.WARNING:
            prefix = "warning: "
        elif record.levelno <= logging.DEBUG:
            cat = _category_of(record.name)
            prefix = f"[{cat}] " if cat else ""
        return f"{stamp} {prefix}{record.getMessage()}"


class LogControl:
    """The node's logging: handlers it installed and which categories are on."""

    def __init__(self, path: Path | None, handlers: list[logging.Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._enabled: set[str] = set()

    def categories(self) -> dict[str, bool]:
        return {c: c in self._enabled for c in sorted(CATEGORIES)}

    def set(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> dict[str, bool]:
        """Enable ``include`` then disable ``exclude`` (Core's order); unknown names raise
        ``UnknownCategoryError`` before anything changes."""
        inc = expand_categories(include)
        exc = expand_categories(exclude)
        self._enabled = (self._enabled | inc) - exc
        self._apply()
        return self.categories()

    def _apply(self) -> None:
        # Parents before children, so a child's explicit level is not overridden.
        pairs = sorted(
            ((name, cat) for cat, names in CATEGORIES.items() for name in names),
            key=lambda p: p[0].count("."),
        )
        for name, cat in pairs:
            on = cat in self._enabled
            default = logging.INFO if name.startswith("peercash") else logging.WARNING
            logging.getLogger(name).setLevel(logging.DEBUG if on else default)

    def close(self) -> None:
        root = logging.getLogger()
        for h in self._handlers:
            root.removeHandler(h)
            h.close()
        self._handlers = []


def setup_logging(
    datadir: Path | None,
    debug: Iterable[str] = (),
    *,
    printtoconsole: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
) -> LogControl:
    """Log to ``datadir/debug.log`` (rotated by size) and, if asked, to stderr.

    ``datadir`` None logs to the console only. Raises ``UnknownCategoryError`` for a bad
    category and ``OSError`` when the log file cannot be opened.
    """
    enabled = expand_categories(debug)
    handlers: list[logging.Handler] = []
    path: Path | None = None
    if datadir is not None:
        path = datadir / DEBUG_LOG_NAME
        fh = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        fh.setFormatter(_FileFormatter())
        fh.setLevel(logging.DEBUG)
        handlers.append(fh)
    if printtoconsole:
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(_ConsoleFormatter())
        ch.setLevel(logging.DEBUG)
        handlers.append(ch)
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for h in handlers:
        root.addHandler(h)
    logging.getLogger("peercash").setLevel(logging.INFO)
    control = LogControl(path, handlers)
    control.set(enabled)
    return control
