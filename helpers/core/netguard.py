"""A network guard: refuse (and record) every connection that leaves this machine.

Used by the test session, by notebook kernels started with COURSE_BLOCK_NETWORK=1, and by
notebook 07 to *prove* that training and generation need no network.

What it covers: `socket.socket.connect` / `connect_ex` (everything in Python's stdlib and in
requests/urllib3/httpx goes through them) and name look-ups (`getaddrinfo`), so a blocked host
is refused before any packet is sent. Loopback (127.0.0.0/8, ::1, "localhost") and Unix sockets stay
allowed: Jupyter kernels talk to their client over loopback.
What it leaves out: native code that opens sockets without Python (e.g. a C library) is not seen.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class NetworkBlockedError(ConnectionRefusedError):
    """Raised instead of opening a connection that would leave this machine."""


@dataclass
class NetworkGuard:
    """The installed guard; `attempts` lists every refused (host, port) in order."""

    attempts: list[tuple[str, object]] = field(default_factory=list)
    _originals: dict = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        return bool(self._originals)


_GUARD = NetworkGuard()


def is_loopback(host: object) -> bool:
    """True for addresses that stay on this machine: '127.0.0.1' -> True, 'pypi.org' -> False."""
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(host: object, port: object) -> None:
    _GUARD.attempts.append((str(host), port))
    raise NetworkBlockedError(
        f"network access to {host}:{port} is blocked: the course runs offline "
        "(COURSE_BLOCK_NETWORK=1 or helpers.core.netguard.block_network()). "
        "Load models and data from installed packages instead (see helpers.instruct.models / helpers.core.data)."
    )


def block_network() -> NetworkGuard:
    """Install the guard for this process (idempotent) and return it."""
    if _GUARD.active:
        return _GUARD
    orig_connect = socket.socket.connect
    orig_connect_ex = socket.socket.connect_ex
    orig_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = address[0], address[1]  # type: ignore[index]
            if not is_loopback(host):
                _refuse(host, port)

    def connect(self, address):  # noqa: ANN001 - same signature as socket.connect
        _check(self, address)
        return orig_connect(self, address)

    def connect_ex(self, address):  # noqa: ANN001
        _check(self, address)
        return orig_connect_ex(self, address)

    def getaddrinfo(host, port, *args, **kwargs):  # noqa: ANN001
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not is_loopback(name):
            _refuse(name, port)
        return orig_getaddrinfo(host, port, *args, **kwargs)

    _GUARD._originals = {
        "connect": orig_connect,
        "connect_ex": orig_connect_ex,
        "getaddrinfo": orig_getaddrinfo,
    }
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    return _GUARD


def unblock_network() -> None:
    """Remove the guard (the record of attempts is kept)."""
    if not _GUARD.active:
        return
    socket.socket.connect = _GUARD._originals["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _GUARD._originals["connect_ex"]  # type: ignore[method-assign]
    socket.getaddrinfo = _GUARD._originals["getaddrinfo"]
    _GUARD._originals = {}


def guard() -> NetworkGuard:
    """The process-wide guard (active or not) and its list of refused attempts."""
    return _GUARD


@contextlib.contextmanager
def offline() -> Iterator[NetworkGuard]:
    """`with offline() as g: ...` blocks the network inside the block; g.attempts lists refusals.

    If the guard was already active (e.g. under the test suite) it stays active afterwards.
    """
    was_active = _GUARD.active
    start = len(_GUARD.attempts)
    block_network()
    scoped = NetworkGuard(attempts=[])
    try:
        yield scoped
    finally:
        scoped.attempts.extend(_GUARD.attempts[start:])
        if not was_active:
            unblock_network()
