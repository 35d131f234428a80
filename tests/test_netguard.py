"""The network guard: connection attempts leaving the machine are refused and listed; loopback works.

    .venv/bin/python -m pytest tests/test_netguard.py -q

conftest.py already blocks the network for the whole session, so these tests also check that a scoped
`offline()` leaves a guard that was active before it active afterwards.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request

import pytest

from helpers.core.netguard import NetworkBlockedError, block_network, guard, is_loopback, offline, unblock_network

# 192.0.2.0/24 is TEST-NET-1 (RFC 5737): documentation only, never routed, so even a broken guard
# would not reach anyone.
UNREACHABLE = ("192.0.2.10", 443)


@pytest.mark.parametrize("connect", ["create_connection", "connect", "connect_ex"])
def test_connection_attempt_is_refused_and_recorded(connect):
    with offline() as g:
        with pytest.raises(NetworkBlockedError, match="blocked"):
            if connect == "create_connection":
                socket.create_connection(UNREACHABLE, timeout=1)
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    getattr(s, connect)(UNREACHABLE)
    assert g.attempts == [("192.0.2.10", 443)]
    assert guard().attempts[-1] == ("192.0.2.10", 443)


def test_name_lookup_and_http_are_refused_before_any_packet():
    with offline() as g:
        with pytest.raises(NetworkBlockedError):
            socket.getaddrinfo("pypi.org", 443)
        with pytest.raises(urllib.error.URLError) as info:
            urllib.request.urlopen("http://example.com/", timeout=1)  # noqa: S310 - refused by the guard
        assert isinstance(info.value.reason, NetworkBlockedError)
    assert [host for host, _ in g.attempts] == ["pypi.org", "example.com"]


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(16))

    thread = threading.Thread(target=serve)
    thread.start()
    with offline() as g:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"hello")
        socket.getaddrinfo("localhost", port)
    thread.join(timeout=5)
    server.close()
    assert received == [b"hello"]
    assert g.attempts == []


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                            ("localhost", True), ("192.0.2.10", False), ("pypi.org", False),
                                            (None, False)])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_offline_restores_the_previous_state():
    was_active = guard().active
    unblock_network()
    try:
        with offline():
            assert guard().active
        assert not guard().active  # it was off before the block, so it is off after
    finally:
        if was_active:
            block_network()
    assert guard().active is was_active
