"""The second CI pass must really run on PostgreSQL and Redis: a missing service fails it."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


@pytest.mark.django_db
def test_database_is_the_configured_one():
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
    if REQUIRED:
        assert connection.vendor == "postgresql"


def test_broker_is_redis_when_redis_url_is_set():
    if not os.environ.get("REDIS_URL"):
        assert settings.Q_CLUSTER.get("orm") == "default"
        assert not REQUIRED, "REQUIRE_SERVICES=1 needs REDIS_URL"
        return
    import redis

    assert settings.Q_CLUSTER["redis"] == os.environ["REDIS_URL"]
    assert redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping() is True
