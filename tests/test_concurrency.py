from __future__ import annotations

import ast
from collections import Counter

import pytest

from generator.contract.generate import GenerateRequest
from generator.errors import InsufficientCredits, RateLimited
from generator.models import CreditLedger, Generation, Team
from generator.services.generations import generation_create
from tests.factories import make_team
from tests.harness import manage, project_env, run_together

REQUEST = GenerateRequest(input="https://shop.example/shoe.jpg", options={"prompt": "zoom in", "duration": 5})


def submit_together(team: Team, count: int) -> Counter:
    """Submit `count` jobs from `count` threads released at the same instant; tally the outcomes."""
    results = run_together(count, lambda: generation_create(team=Team.objects.get(pk=team.pk), request=REQUEST))
    names = {InsufficientCredits: "402", RateLimited: "429"}
    # Anything but accepted, 402 or 429 is a failure of the proof, and is reported as itself.
    return Counter(
        names.get(type(result), f"{type(result).__name__}: {result}")
        if isinstance(result, BaseException)
        else "accepted"
        for result in results
    )


def ledger_sum(team: Team) -> int:
    return sum(CreditLedger.objects.filter(team=team).values_list("amount", flat=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_submits_against_100_credits_accept_exactly_two():
    team = make_team(credits=100, rate_per_second=1000, rate_per_minute=1000)
    outcomes = submit_together(team, 20)
    team.refresh_from_db()
    assert outcomes == Counter({"accepted": 2, "402": 18})
    assert team.balance == 30
    assert ledger_sum(team) == team.balance
    assert Generation.objects.filter(team=team).count() == 2
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_submits_under_default_limits_accept_exactly_one():
    team = make_team(credits=10_000)
    outcomes = submit_together(team, 10)
    team.refresh_from_db()
    assert outcomes == Counter({"accepted": 1, "429": 9})
    assert team.balance == 10_000 - 35
    assert ledger_sum(team) == team.balance
    assert Generation.objects.filter(team=team).count() == 1


# SQLite (the embedded default): the same races through a real file database, in another process,
# while a worker-like writer updates a job's progress about twice a second: nothing may surface
# "database is locked".
SQLITE_RACE = """
import threading, time
from collections import Counter
from django.db import connection
from django.utils import timezone
from generator.errors import InsufficientCredits, RateLimited
from generator.models import CreditLedger, Generation, Team
from generator.contract.generate import GenerateRequest
from generator.services.billing import credits_grant
from generator.services.generations import generation_create

request = GenerateRequest(input="https://shop.example/shoe.jpg", options={"prompt": "zoom in", "duration": 5})
busy = Team.objects.create(name="Busy", slug="busy", rate_per_second=1000, rate_per_minute=1000)
credits_grant(team=busy, amount=1000, reason="t")
running = generation_create(team=busy, request=request).generation
stop = threading.Event()

def progress_writer():
    n = 0
    try:
        while not stop.is_set():
            n = (n + 1) % 100
            Generation.objects.filter(pk=running.pk).update(progress=n, updated_at=timezone.now())
            time.sleep(0.05)
    finally:
        connection.close()

def race(team, count):
    barrier = threading.Barrier(count)
    outcomes = []
    def one():
        try:
            barrier.wait()
            try:
                generation_create(team=Team.objects.get(pk=team.pk), request=request)
                outcomes.append("accepted")
            except InsufficientCredits:
                outcomes.append("402")
            except RateLimited:
                outcomes.append("429")
            except Exception as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()
    threads = [threading.Thread(target=one) for _ in range(count)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return dict(Counter(outcomes))

writer = threading.Thread(target=progress_writer)
writer.start()
lifted = Team.objects.create(name="Lifted", slug="lifted", rate_per_second=1000, rate_per_minute=1000)
credits_grant(team=lifted, amount=100, reason="t")
default = Team.objects.create(name="Default", slug="default")
credits_grant(team=default, amount=10000, reason="t")
first = race(lifted, 20)
second = race(default, 10)
stop.set()
writer.join()
lifted.refresh_from_db()
total = sum(CreditLedger.objects.filter(team=lifted).values_list("amount", flat=True))
print(repr((first, second, lifted.balance, total)))
"""


@pytest.mark.slow
def test_sqlite_file_database_serializes_the_same_races_without_lock_errors(tmp_path):
    env = project_env(tmp_path)
    manage(env, "migrate", "-v", "0")
    result = manage(env, "shell", "-c", SQLITE_RACE, timeout_s=300)
    assert "locked" not in result.stderr
    first, second, balance, total = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert first == {"accepted": 2, "402": 18}
    assert second == {"accepted": 1, "429": 9}
    assert balance == total == 30
