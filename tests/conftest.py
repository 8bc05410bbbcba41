"""Shared test setup: isolated media/storage roots and a guard that keeps traffic on loopback."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.core.cache import caches

# Session fixtures for the storage protocol servers (moto S3, gcp-storage-emulator), shared by all modules.
pytest_plugins = ["tests.storage_servers", "tests.browser_support"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class OffMachineTraffic(AssertionError):
    """A test tried to reach an address that is not on this machine."""


def _check_address(address) -> None:
    if not isinstance(address, tuple):
        return  # unix sockets
    host = address[0]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise OffMachineTraffic(f"connect to unresolved host {host!r} refused in tests") from None
    if not ip.is_loopback:
        raise OffMachineTraffic(f"connect to {ip} refused in tests: only loopback is allowed")


def _guarded_connect(self, address):
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    results = _real_getaddrinfo(host, *args, **kwargs)
    for family, _type, _proto, _canon, sockaddr in results:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            if not ip.is_loopback:
                raise socket.gaierror(socket.EAI_NONAME, f"resolution of {host!r} refused in tests (not loopback)")
    return results


def pytest_configure(config) -> None:
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items) -> None:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "slow" in item.keywords and os.environ.get("SKIP_SLOW") == "1":
            item.add_marker(pytest.mark.skip(reason="slow tests run in the other CI pass"))


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GENERATOR_LOCAL_STORAGE_ROOT = tmp_path / "storages"
    settings.GENERATOR_LOCAL_STORAGE_ROOT.mkdir()
    settings.MEDIA_ROOT.mkdir()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    caches["default"].clear()  # every LocMemCache of the process shares one store
    # django-axes keeps its handler, and the cache it counts in, from the first login of the process.
    AxesProxyHandler.get_implementation(force=True)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.GENERATOR_PUBLIC_URL = "http://testserver"


@pytest.fixture
def dns(monkeypatch):
    """Stub the resolver: (answers, lookups); names in answers resolve to those addresses, others fail."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "stubbed: unknown")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups
