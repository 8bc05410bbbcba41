"""schemathesis against /v1/openapi.json through WSGI: no 5xx and no response outside the document.

Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance and response_headers_conformance. Phases: the document's examples,
then fuzzing with at most MAX_EXAMPLES cases per operation, positive and negative data.
Requests carry a real key of a team with credits, a local storage and finished, failed and
queued generations. Random ids and URLs almost never name something real, so every other
generated case is pointed at one of those objects (generate bodies get a valid URL, storage
bodies a new local folder), so 200/201, 429 and 402 answers are validated too, not only
refusals. GET /v1/openapi.json is not collected when the document is loaded from it;
tests/test_api.py covers it. The conftest guard refuses any non-loopback resolution, so
generated storage endpoints cannot send traffic anywhere.
"""

from __future__ import annotations

import itertools
import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from generator.models import Generation, Storage
from tests.factories import make_api_key, make_member, make_team

# Bounded for CI; SCHEMATHESIS_MAX_EXAMPLES / SCHEMATHESIS_PHASES run a deeper search by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "examples,fuzzing").split(",")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
REQUEST = {
    "input": "https://shop.example/shoe.jpg",
    "options": {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5},
}

# Loaded from the served document (the view needs no database), so what is tested is what clients get.
schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application())
schema.config.phases.update(phases=PHASES)
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES)


@pytest.fixture
def _keep_test_connection():
    """Keep the test's connection open across WSGI requests, as Django's own test client does.

    The handler closes connections that are not in autocommit at request end; inside the test
    transaction that would close PostgreSQL's connection under the test.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, _keep_test_connection):
    team = make_team(credits=700)
    # Room for several accepted jobs per run, so 200, 429 and 402 answers all get validated.
    team.rate_per_second = 5
    team.rate_per_minute = 10
    team.save(update_fields=["rate_per_second", "rate_per_minute"])
    storage = Storage.objects.create(team=team, name="local", type="local", parameters={"path": "photos"})
    member = make_member(team)
    now = timezone.now()
    generations = [
        Generation.objects.create(team=team, request=REQUEST, cost=35),
        Generation.objects.create(
            team=team,
            request=REQUEST,
            cost=35,
            status="DONE",
            stage="done",
            completed_at=now,
            video_name="videos/x.mp4",
            input_object={
                "ext": "jpg",
                "mps": 0.48,
                "mime": "image/jpeg",
                "format": "jpeg",
                "width": 800,
                "height": 600,
            },
            output_object={"ext": "mp4", "mime": "video/mp4", "format": "mp4"},
        ),
        Generation.objects.create(
            team=team,
            request={**REQUEST, "output": "storage://local/out/"},
            cost=35,
            status="DONE",
            stage="done",
            completed_at=now,
            is_temporary=False,
            output_storage=storage,
            output_key="out/a.mp4",
            input_object={"ext": "png", "mps": 0.48, "mime": "image/png", "format": "png", "width": 800, "height": 600},
            output_object={
                "ext": "mp4",
                "mime": "video/mp4",
                "format": "mp4",
                "object_key": "photos/out/a.mp4",
                "object_bucket": team.slug,
                "object_uri": f"local://{team.slug}/photos/out/a.mp4",
                "claid_storage_uri": "storage://local/out/a.mp4",
            },
        ),
        Generation.objects.create(
            team=team,
            request=REQUEST,
            cost=35,
            status="ERROR",
            stage="error",
            completed_at=now,
            errors=[{"error": "the image is 299 px wide; at least 300 px is needed", "created_at": now.isoformat()}],
        ),
    ]
    return {
        "headers": {"Authorization": f"Bearer {make_api_key(team, user=member.user)}"},
        "generation_ids": itertools.cycle([g.pk for g in generations]),
        "storage_id": storage.pk,
        "turn": itertools.count(),
    }


def _point_at_real_objects(case, world) -> None:
    if next(world["turn"]) % 2:
        return
    path = case.operation.path
    if path.startswith("/v1/video/generate/{id}"):
        case.path_parameters = {**(case.path_parameters or {}), "id": next(world["generation_ids"])}
    elif path == "/v1/storage/storages/{id}":
        case.path_parameters = {**(case.path_parameters or {}), "id": world["storage_id"]}
    elif case.operation.label == "POST /v1/video/generate" and isinstance(case.body, dict):
        case.body = {**case.body, "input": REQUEST["input"]}
    elif case.operation.label == "POST /v1/storage/storages" and isinstance(case.body, dict):
        turn = next(world["turn"])
        case.body = {"name": f"made-{turn}", "type": "local", "parameters": {"path": f"folder-{turn}"}}


@pytest.mark.slow
@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_openapi_document(case, world):
    _point_at_real_objects(case, world)
    response = case.call(headers=world["headers"])
    case.validate_response(response, checks=CHECKS)
