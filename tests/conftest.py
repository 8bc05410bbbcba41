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


# Every refused connect of the running test, kept even when the code under test swallows the
# exception: _no_off_machine_traffic fails the test on any of them, so "nothing was dialled" is
# checked for every test, not only where a test asserts it.
_refused_connects: list[str] = []
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def _check_address(address) -> None:
    if not isinstance(address, tuple):
        return  # unix sockets
    host = address[0]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        _refused_connects.append(str(host))
        raise OffMachineTraffic(f"connect to unresolved host {host!r} refused in tests") from None
    if not ip.is_loopback:
        _refused_connects.append(str(ip))
        raise OffMachineTraffic(f"connect to {ip} refused in tests: only loopback is allowed")


def _guarded_connect(self, address):
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(address)
    return _real_connect_ex(self, address)


def _is_local_name(host) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        name = name.lower().rstrip(".")
        return name in _LOCAL_NAMES or name.endswith(".localhost")


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local_name(host):
        # Not even a DNS query leaves the machine: other names resolve only through the dns fixture.
        raise socket.gaierror(socket.EAI_NONAME, f"resolution of {host!r} refused in tests (not loopback)")
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
def _no_off_machine_traffic():
    _refused_connects.clear()
    yield
    assert not _refused_connects, f"the test tried to reach {_refused_connects} (only loopback may be dialled)"


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


# --- the fixtures most modules share -----------------------------------------------------------
# (plain helpers they share are in tests/harness.py and tests/factories.py)


@pytest.fixture
def team(db):
    """The team a test acts as: Acme (slug acme), 1000 credits, the default rate limits."""
    from tests.factories import make_team

    return make_team("Acme", credits=1000, slug="acme")


@pytest.fixture
def key(team) -> str:
    """A raw API key of the team with every scope."""
    from tests.factories import make_api_key

    return make_api_key(team)


@pytest.fixture
def member(team):
    """Mia, a plain member of the team (not a manager)."""
    from tests.factories import make_member, make_user

    return make_member(team, make_user("mia@example.com", name="Mia Member"))


@pytest.fixture
def member_client(client, member):
    """The test client, logged in as Mia."""
    client.force_login(member.user)
    return client


@pytest.fixture
def mine_storage(team):
    """A local storage named "mine" at the root of the team's folder (for storage:// inputs and outputs)."""
    from generator.models import Storage

    return Storage.objects.create(team=team, name="mine", type="local", parameters={"path": ""})


@pytest.fixture
def unlimited(team):
    """Lift the team's rate limits, for tests about something else than the limits."""
    team.rate_per_second = team.rate_per_minute = 1000
    team.save(update_fields=["rate_per_second", "rate_per_minute"])
    return team


@pytest.fixture
def loopback(settings):
    """A scripted HTTP server on 127.0.0.1 that the fetcher may reach (input photos, webhook receivers)."""
    from tests.loopback import LoopbackServer

    server = LoopbackServer()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


@pytest.fixture
def claid(loopback):
    """A Claid stand-in on loopback: GET /v1/account accepts CLAID_KEY and refuses any other key as Claid does."""
    from tests.loopback import claid_account

    loopback.routes["/v1/account"] = claid_account
    return loopback


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    """The tasks handed to the broker (instead of django-q2), as (function path, args)."""
    from generator.services import queue

    tasks: list[tuple[str, tuple]] = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **kwargs: tasks.append((func, args)))
    return tasks
