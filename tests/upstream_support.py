"""What every upstream-engine job test does: run a job up to its upstream submit, look at it, read its ledger."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from generator.contract.generate import GenerateRequest
from generator.models import CreditLedger, Generation
from generator.services.generations import generation_create
from generator.services.upstream_jobs import upstream_poll
from generator.services.worker import generation_run


def submit_job(team, body: dict) -> Generation:
    """Create a job from a generate body and run the worker's part (fetch, validate, submit upstream)."""
    generation = generation_create(team=team, request=GenerateRequest.parse(body)).generation
    generation_run(generation.pk)
    generation.refresh_from_db()
    return generation


def look(generation: Generation, times: int = 1) -> Generation:
    """Give the job `times` poll-task looks, as the ticker would."""
    for _ in range(times):
        upstream_poll([generation.pk])
    generation.refresh_from_db()
    return generation


def ledger(generation: Generation) -> list[tuple[str, int]]:
    return list(CreditLedger.objects.filter(generation=generation).order_by("pk").values_list("kind", "amount"))


def backdate_upstream(generation: Generation, key: str, *, seconds: float) -> None:
    """Pretend an upstream job's moment `key` ("submitted_at", "failing_since") was `seconds` ago."""
    moment = (timezone.now() - timedelta(seconds=seconds)).isoformat()
    Generation.objects.filter(pk=generation.pk).update(upstream_state={**generation.upstream_state, key: moment})


def look_past_deadline(generation: Generation, settings, *, deadline_s: int = 10) -> Generation:
    """Give an upstream job one look after GENERATOR_UPSTREAM_DEADLINE_S (shortened to `deadline_s`) has passed."""
    settings.GENERATOR_UPSTREAM_DEADLINE_S = deadline_s
    backdate_upstream(generation, "submitted_at", seconds=6 * deadline_s)
    return look(generation)
