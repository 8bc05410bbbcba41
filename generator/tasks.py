"""django-q2 entry points only: primitive arguments in, one service call each.

Every task is safe to run twice: the broker may repeat or lose tasks, and the services guard
state with conditional updates.
"""

from __future__ import annotations

from generator.services import billing
from generator.services.idempotency import idempotency_purge
from generator.services.purge import generations_purge_expired
from generator.services.reaper import generations_reap
from generator.services.ticker import ticker_tick
from generator.services.uploads import uploads_purge
from generator.services.upstream_handover import kept_inputs_purge
from generator.services.worker import generation_run_next


def generation_run_task(*_legacy: object) -> int | None:
    """Run the next queued job in the fair rotation between teams (a slot: no-op if none is queued).

    Tasks queued before slots existed carry a generation id; it is ignored, as the job it named
    is still in the queue and is served in its turn.
    """
    return generation_run_next()


def reap_task() -> str:
    """Retry or fail jobs whose worker died; re-enqueue jobs the broker lost."""
    report = generations_reap()
    return f"requeued={report.requeued} failed={report.failed} reenqueued={report.reenqueued}"


def purge_task() -> str:
    """Delete expired temporary videos, Idempotency-Key records older than 24 h, uploads past their retention
    and photos kept for upstream jobs that have ended."""
    return (
        f"videos={generations_purge_expired()} idempotency_keys={idempotency_purge()} uploads={uploads_purge()}"
        f" kept_inputs={kept_inputs_purge()}"
    )


def allowance_task() -> int:
    """Credit this month's allowances (once per team and month; catches up after downtime)."""
    return billing.allowances_credit_all()


def tick_task() -> str:
    """Hand out due work once (the fallback for a cluster without its ticker thread)."""
    return " ".join(f"{path.rsplit('.', 1)[-1]}={count}" for path, count in ticker_tick().items()) or "no finders"


def upstream_poll_task(pks: str) -> int:
    """Look once upstream at each of a few waiting jobs (comma-separated pks, from the ticker)."""
    from generator.services.upstream_jobs import upstream_poll

    ids = [int(pk) for pk in pks.split(",") if pk.strip().isdigit()]
    upstream_poll(ids)
    return len(ids)


def upstream_cancel_task(generation_id: int) -> None:
    """Forward a cancel to the upstream of a job cancelled while it was waiting there."""
    from generator.services.upstream_jobs import upstream_cancel

    upstream_cancel(generation_id)
