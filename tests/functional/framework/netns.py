"""Linux network namespaces as throw-away test hosts (root only).

Each ``Namespace`` is a private network stack with its own loopback, ports and routes. Two of
them joined by ``veth`` look like two machines on one link, with addresses that exist only
inside the namespaces this module created (``10.200.N.1`` and ``10.200.N.2`` by default): no
traffic ever leaves the machine. A process runs inside with ``ns.popen(argv)`` / ``ns.run(argv)``
(``ip netns exec NAME ...``), and the test process itself reaches a server inside with
``ns.connect(host, port)``, which opens the socket from a thread switched into the namespace.

``available()`` says whether this machine can do it (root, ``ip`` present, a probe namespace
can be made); tests call ``pytest.skip(unavailable_reason())`` otherwise. Namespaces are named
``pctest-<pid>-<n>``; ``Namespace.__exit__`` always deletes its namespace (which removes its
veth ends), and ``cleanup_stale()`` deletes those left behind by dead test processes.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

PREFIX = "pctest-"
NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
_counter = itertools.count()
_lock = threading.Lock()


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message holds the command and its stderr."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` and return the finished process (raises ``NetnsError`` if it fails)."""
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _new_name() -> str:
    with _lock:
        return f"{PREFIX}{os.getpid()}-{next(_counter)}"


@cache
def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can (probed once per process)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    name = _new_name()
    r = ip("netns", "add", name, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    ip("netns", "del", name, check=False)
    return None


def available() -> bool:
    """True when this process may create network namespaces."""
    return unavailable_reason() is None


def list_namespaces() -> list[str]:
    """Names of every network namespace on the machine (``ip netns list``)."""
    out = ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup_stale() -> list[str]:
    """Delete ``pctest-*`` namespaces whose creating process is gone; returns their names."""
    removed = []
    for name in list_namespaces():
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        if ip("netns", "del", name, check=False).returncode == 0:
            removed.append(name)
    return removed


_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespace:
    """One network namespace; a context manager that always deletes it on exit."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or _new_name()
        self.created = False

    def create(self) -> Namespace:
        ip("netns", "add", self.name)
        self.created = True
        self.exec("ip", "link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        """Delete the namespace; processes still inside keep it alive until they exit."""
        if self.created:
            ip("netns", "del", self.name, check=False)
            self.created = False

    def __enter__(self) -> Namespace:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command inside: ``ip netns exec NAME``."""
        return ["ip", "netns", "exec", self.name]

    def exec(self, *argv: str) -> str:
        """Run ``argv`` inside; returns stdout, raises ``NetnsError`` on a non-zero exit."""
        r = self.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise NetnsError(f"{' '.join(argv)} in {self.name} failed: {r.stderr.strip()}")
        return str(r.stdout)

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` of ``argv`` inside the namespace."""
        return subprocess.run([*self.prefix(), *argv], **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` of ``argv`` inside (``ip netns exec`` execs it: same pid)."""
        return subprocess.Popen([*self.prefix(), *argv], **kwargs)

    def connect(self, host: str, port: int, timeout: float = 10.0) -> socket.socket:
        """A TCP connection from the test process to ``host:port`` inside this namespace."""
        result: list[socket.socket | BaseException] = []

        def work() -> None:
            try:
                own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
                target = os.open(NETNS_DIR / self.name, os.O_RDONLY)
                try:
                    _setns(target)
                    try:
                        result.append(socket.create_connection((host, port), timeout))
                    finally:
                        _setns(own)
                finally:
                    os.close(target)
                    os.close(own)
            except BaseException as e:  # handed to the caller's thread
                result.append(e)

        t = threading.Thread(target=work, name=f"connect-{self.name}")
        t.start()
        t.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]


class Veth:
    """A veth pair with one end in each of two namespaces, addressed and up."""

    def __init__(
        self, a: Namespace, b: Namespace, addr_a: str, addr_b: str, prefixlen: int = 24
    ) -> None:
        self.a, self.b = a, b
        self.addr_a, self.addr_b = addr_a, addr_b
        tag = f"{os.getpid() % 10000}x{next(_counter)}"
        self.if_a, self.if_b = f"va{tag}", f"vb{tag}"  # IFNAMSIZ: at most 15 characters
        ip("link", "add", self.if_a, "type", "veth", "peer", "name", self.if_b)
        try:
            ip("link", "set", self.if_a, "netns", a.name)
            ip("link", "set", self.if_b, "netns", b.name)
        except NetnsError:
            ip("link", "del", self.if_a, check=False)
            raise
        a.exec("ip", "addr", "add", f"{addr_a}/{prefixlen}", "dev", self.if_a)
        b.exec("ip", "addr", "add", f"{addr_b}/{prefixlen}", "dev", self.if_b)
        self.set_up(True)

    def set_up(self, up: bool) -> None:
        """Bring both ends up or down (down is a clean partition: packets are dropped)."""
        state = "up" if up else "down"
        self.a.exec("ip", "link", "set", self.if_a, state)
        self.b.exec("ip", "link", "set", self.if_b, state)


def link(a: Namespace, b: Namespace, subnet: int = 0) -> Veth:
    """Join ``a`` and ``b``: ``a`` gets ``10.200.SUBNET.1``, ``b`` gets ``10.200.SUBNET.2``.

    The addresses exist only inside these two namespaces, so the same subnet may be reused by
    other pairs (other tests, other xdist workers) without clashing.
    """
    if not 0 <= subnet <= 255:
        raise ValueError(f"subnet {subnet} is not in 0..255")
    return Veth(a, b, f"10.200.{subnet}.1", f"10.200.{subnet}.2")
