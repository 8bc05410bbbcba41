from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from generator.contract.generate import GenerateRequest
from generator.errors import RateLimited
from generator.models import Generation
from generator.services.generations import generation_create
from generator.services.ratelimit import ratelimit_status
from tests.factories import make_team

T0 = datetime(2026, 11, 25, 11, 59, 30, tzinfo=UTC)
REQUEST = GenerateRequest(input="https://shop.example/shoe.jpg", options={"prompt": "zoom in", "duration": 5})


def submit_at(team, moment):
    return generation_create(team=team, request=REQUEST, now=moment)


@pytest.mark.django_db
def test_sixteenth_submit_at_1_1_s_spacing_is_refused_with_retry_after():
    team = make_team(credits=10_000)
    for i in range(15):
        result = submit_at(team, T0 + timedelta(seconds=1.1 * i))
        # Right after each accept the 1 s window is exhausted; after the 15th the minute binds.
        assert result.rate.remaining == 0
        assert result.rate.limit == (15 if i == 14 else 1)
    sixteenth = T0 + timedelta(seconds=1.1 * 15)
    with pytest.raises(RateLimited) as caught:
        submit_at(team, sixteenth)
    headers = caught.value.rate.headers(refused=True)
    # The first job (at T0) leaves the 60 s window at T0 + 60 s, 43.5 s after the 16th try.
    assert headers["Retry-After"] == "44"
    assert headers["RateLimit-Reset"] == "44"
    assert headers["RateLimit-Remaining"] == "-1"
    assert headers["RateLimit-Limit"] == "15, 15;w=60, 1;w=1"
    assert Generation.objects.filter(team=team).count() == 15
    # Retrying exactly when Retry-After says is admitted; a moment before is not.
    with pytest.raises(RateLimited):
        submit_at(team, T0 + timedelta(seconds=59.999))
    submit_at(team, T0 + timedelta(seconds=60))


@pytest.mark.django_db
def test_accepted_headers_report_nearest_exhaustion():
    team = make_team(credits=10_000)
    first = submit_at(team, T0)
    assert first.rate.headers() == {
        "RateLimit-Limit": "1, 15;w=60, 1;w=1",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }
    with pytest.raises(RateLimited) as caught:
        submit_at(team, T0 + timedelta(seconds=0.4))
    assert caught.value.rate.headers(refused=True)["Retry-After"] == "1"
    second = submit_at(team, T0 + timedelta(seconds=1))
    assert second.rate.remaining == 0
    lifted = make_team(credits=10_000, rate_per_second=5, rate_per_minute=100)
    assert submit_at(lifted, T0).rate.headers()["RateLimit-Limit"] == "5, 100;w=60, 5;w=1"
    assert submit_at(lifted, T0).rate.remaining == 3


@pytest.mark.django_db
def test_burst_across_a_minute_boundary_never_admits_more_than_15_in_any_60_s():
    team = make_team(credits=100_000, rate_per_second=100)
    accepted, resets = [], []
    moment = T0
    end = T0 + timedelta(seconds=200)
    while moment < end:
        try:
            submit_at(team, moment)
            accepted.append(moment)
        except RateLimited as exc:
            resets.append(exc.rate.reset_s)
        moment += timedelta(seconds=0.35)
    assert len(accepted) >= 45
    assert min(resets) >= 1
    for start in accepted:
        in_window = [t for t in accepted if start <= t < start + timedelta(seconds=60)]
        assert len(in_window) <= 15
    # Exact, not approximate: the burst fills 15 at once, then one more exactly when each leaves.
    assert accepted[15] - accepted[0] >= timedelta(seconds=60)
    assert accepted[15] - accepted[0] < timedelta(seconds=60.35)


@pytest.mark.django_db
def test_refused_requests_do_not_count_toward_the_windows():
    team = make_team(credits=10_000)
    submit_at(team, T0)
    for step in range(1, 10):
        with pytest.raises(RateLimited):
            submit_at(team, T0 + timedelta(seconds=0.1 * step))
    assert ratelimit_status(team=team, now=T0 + timedelta(seconds=1)).remaining == 1
    submit_at(team, T0 + timedelta(seconds=1))
