"""django-q2 entry point for webhook deliveries (kept apart from tasks.py, which the pipeline owns)."""

from __future__ import annotations

from generator.services.webhooks import batch_webhook_deliver, webhook_deliver


def webhook_deliver_task(generation_id: int, attempt: int = 1) -> None:
    """Make one delivery attempt for a finished generation; the service schedules any retry."""
    webhook_deliver(generation_id=generation_id, attempt=attempt)


def batch_webhook_deliver_task(batch_id: int, attempt: int = 1) -> None:
    """Make one delivery attempt for a finished batch; the service schedules any retry."""
    batch_webhook_deliver(batch_id=batch_id, attempt=attempt)
