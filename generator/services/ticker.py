"""The ticker: a fine clock for work that falls due at a moment (upstream polls, batch dispatch).

django-q2's scheduler wakes only every 30 s, too coarse for "first look within 5 s" or "one
item a second". So every `qcluster` main process runs a ticker thread (started by our
`qcluster` command, generator/management/commands/qcluster.py) that calls each due-work
finder in FINDERS every GENERATOR_TICK_S seconds. A finder claims what is due with a
conditional update, so tickers on several machines never hand out the same item, and enqueues
short tasks for it. A finder does no outbound I/O: a tick is a few indexed queries and holds no
worker. The minute schedule `generator.tasks.tick_task` ticks too, a fallback for a cluster
started without the thread (see docs/jobs.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Dotted paths of finders: `def finder(*, now: datetime) -> int` returns how many items it handed out.
FINDERS: tuple[str, ...] = (
    "generator.services.batches.batches_dispatch",
    "generator.services.upstream_jobs.upstream_polls_due",
)

Finder = Callable[..., int]


def _finders() -> list[tuple[str, Finder]]:
    return [(path, import_string(path)) for path in FINDERS]


def ticker_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Run every finder once; one that fails is logged and the others still run."""
    now = now or timezone.now()
    handed_out: dict[str, int] = {}
    for path, finder in _finders():
        try:
            handed_out[path] = int(finder(now=now) or 0)
        except Exception:
            # A database hiccup or a bug in one finder must not stop the clock for the others.
            logger.exception("ticker: %s failed", path)
            handed_out[path] = 0
    return handed_out


class Ticker(threading.Thread):
    """Call ticker_tick every interval_s until stop(); owns its own database connection."""

    def __init__(self, *, interval_s: float | None = None) -> None:
        super().__init__(name="generator-ticker", daemon=True)
        self.interval_s = float(interval_s if interval_s is not None else settings.GENERATOR_TICK_S)
        self.stopping = threading.Event()

    def run(self) -> None:
        logger.info("ticker running every %.2f s", self.interval_s)
        try:
            while not self.stopping.wait(self.interval_s):
                close_old_connections()
                try:
                    ticker_tick()
                except Exception:
                    logger.exception("ticker: tick failed")
        finally:
            connections.close_all()

    def stop(self, *, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout_s)
