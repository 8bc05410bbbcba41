"""Batches: accepting a 10,000-item batch (target < 5 s), and the dispatcher's memory against batch size.

Seeds a fresh file SQLite database (the embedded default) in a temporary folder. Then:
- accepts batches of 10,000 URLs and of a 10,000-image local storage folder (every input is
  validated like a single submit, the folder is listed, the items are written), timed;
- for batches of 300, 3,000 and 10,000 items, runs the dispatcher for the same 25 ticks on a
  controlled clock (team limits raised to 10 a second, so each tick submits 10 items through the
  create service: 250 items in every case) and records the peak Python memory allocated during
  those ticks (tracemalloc) and the time per tick. Flat memory across sizes is the claim.
Usage: .venv/bin/python bench/batches.py [--items 10000] [--ticks 25]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import support  # noqa: E402

TARGET_CREATE_S = 5.0
OPTIONS = {"prompt": "slow zoom in, light sweep", "duration": 5}


def setup_django(data_dir: str) -> None:
    support.setup_django(data_dir)
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)  # one "Enqueued" line per submitted item
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _team(name: str, *, per_second: int, per_minute: int):
    from generator.models import Team
    from generator.services.billing import credits_grant

    team = Team.objects.create(
        name=name, slug=name.lower().replace(" ", "-"), rate_per_second=per_second, rate_per_minute=per_minute
    )
    credits_grant(team=team, amount=1_000_000_000, reason="bench")
    return team


def _urls(count: int) -> list[str]:
    return [f"https://shop.example/catalogue/spring/product-{index:05}.jpg" for index in range(count)]


def bench_create(items: int) -> list[tuple[str, float]]:
    from django.conf import settings

    from generator.models import Storage
    from generator.services.batches import batch_create

    team = _team("Create", per_second=1, per_minute=15)
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / "catalogue"
    folder.mkdir(parents=True)
    for index in range(items):
        (folder / f"product-{index:05}.jpg").write_bytes(b"\xff\xd8\xff")
    Storage.objects.create(team=team, name="catalogue", type="local", parameters={"path": "catalogue"})
    results = []
    for label, body in (
        (f"{items:,} URLs", {"inputs": _urls(items), "options": OPTIONS}),
        (f"{items:,}-image folder", {"input_folder": "storage://catalogue/", "options": OPTIONS}),
    ):
        started = time.perf_counter()
        batch = batch_create(team=team, body=body)
        elapsed = time.perf_counter() - started
        assert batch.item_count == items, batch.item_count
        results.append((label, elapsed))
    return results


def bench_dispatch(size: int, ticks: int) -> tuple[float, float]:
    """Return (peak KiB allocated during `ticks` dispatcher ticks, median ms per tick)."""
    from django.utils import timezone

    from generator.models import Batch
    from generator.services.batches import batch_create, batches_dispatch

    # Other batches are finished: only this one is active.
    Batch.objects.update(state=Batch.State.DONE)
    team = _team(f"Dispatch {size}", per_second=10, per_minute=10_000)
    batch_create(team=team, body={"inputs": _urls(size), "options": OPTIONS})
    moment = [timezone.now() + timedelta(days=1)]

    def clock():
        return moment[0]

    batches_dispatch(now=clock(), clock=clock)  # warm up imports and caches outside the measurement
    moment[0] += timedelta(seconds=1)
    durations = []
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(ticks):
        started = time.perf_counter()
        batches_dispatch(now=clock(), clock=clock)
        durations.append((time.perf_counter() - started) * 1000)
        moment[0] += timedelta(seconds=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - base) / 1024, statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as data_dir:
        setup_django(data_dir)
        print(f"Accepting a batch (target < {TARGET_CREATE_S:.0f} s; SQLite file database, 2-core machine)")
        print(f"{'batch':<24}{'time':>10}{'vs target':>12}")
        for label, elapsed in bench_create(args.items):
            verdict = "ok" if elapsed < TARGET_CREATE_S else "SLOW"
            print(f"{label:<24}{elapsed:>9.2f}s{elapsed / TARGET_CREATE_S:>11.2f}x {verdict}")
        print()
        print(f"Dispatcher: {args.ticks} ticks of 10 items each, peak memory allocated during the ticks")
        print("(each submission is a transaction on the file database plus a task row for the ORM broker)")
        print(f"{'batch size':<14}{'peak KiB':>10}{'ratio':>8}{'ms/tick':>10}")
        first = None
        for size in (300, 3_000, args.items):
            peak, per_tick = bench_dispatch(size, args.ticks)
            first = first or peak
            print(f"{size:<14,}{peak:>10.0f}{peak / first:>8.2f}{per_tick:>10.1f}")


if __name__ == "__main__":
    main()
