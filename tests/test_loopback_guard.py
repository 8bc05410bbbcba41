"""The test suite's own network guard (tests/conftest.py): nothing but loopback is dialled or even resolved."""

from __future__ import annotations

import contextlib
import socket

import pytest

from tests import conftest


def test_a_refused_connect_is_remembered_even_when_the_code_swallows_it():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # The guard raises before the real connect; code under test may swallow it, the record stays.
    with sock, contextlib.suppress(Exception):
        sock.connect(("10.0.0.5", 80))
    assert conftest._refused_connects == ["10.0.0.5"]
    conftest._refused_connects.clear()  # this test meant it; any other test would now fail at teardown


def test_a_name_that_is_not_local_is_refused_without_asking_the_resolver(monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(conftest, "_real_getaddrinfo", lambda host, *a, **k: asked.append(host) or [])
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("api.replicate.com", 443)
    assert asked == []
    socket.getaddrinfo("localhost", 80)
    assert asked == ["localhost"]
