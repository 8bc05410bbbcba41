"""The one way to enqueue background work: after the surrounding transaction commits."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task


def enqueue_on_commit(func_path: str, *args: int | str, group: str | None = None) -> None:
    """Queue func_path(*args) once the current transaction commits; pass primitives only."""

    def _send() -> None:
        async_task(func_path, *args, group=group, q_options={"task_name": f"{func_path.rsplit('.', 1)[-1]}:{args}"})

    transaction.on_commit(_send)
