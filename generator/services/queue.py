"""The one way to enqueue background work: after the surrounding transaction commits."""

from __future__ import annotations

import logging

from django.db import transaction
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def enqueue_on_commit(func_path: str, *args: int | str, group: str | None = None) -> None:
    """Queue func_path(*args) once the current transaction commits; pass primitives only.

    A broker failure is logged, never raised: the rows are already committed (a job accepted
    and charged), so the caller must still answer. A lost job-run task is re-sent by the
    reaper once GENERATOR_QUEUED_STALE_S has passed.
    """
    task_name = f"{func_path.rsplit('.', 1)[-1]}:{args}"

    def _send() -> None:
        try:
            async_task(func_path, *args, group=group, q_options={"task_name": task_name})
        except Exception:
            logger.exception("could not enqueue %s (is the broker down?)", task_name)

    # robust=True also keeps later on-commit callbacks running if this one ever raises.
    transaction.on_commit(_send, robust=True)
