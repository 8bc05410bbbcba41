"""The Engines page: connect, test, make the team's default and disconnect upstream engines (docs/engines.md)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.errors import ValidationFailed
from generator.forms import EngineForm
from generator.middleware import TeamRequest
from generator.models import EngineConnection
from generator.services.engine_connections import (
    EngineType,
    engine_create,
    engine_delete,
    engine_set_default,
    engine_test,
    engine_types,
    engines_to_api,
)
from generator.views.common import back, found, require_manager, team_required
from generator.views.connections import connect_from_form, connect_page
from generator.views.drafts import draft_load, once_pop, once_put

DRAFT = "engine"
SECRET_FIELDS = ("api_key",)
TEST_RESULT = "engine-test"


def _form_types(types: list[EngineType]) -> dict[str, list[str]]:
    """The form's type choices, and the types that take a model (their provider ships templates)."""
    return {"types": [t.type for t in types], "model_types": [t.type for t in types if t.templates is not None]}


def _engine_or_404(request: TeamRequest, pk: int) -> EngineConnection:
    return found(selectors.engine_get(team=request.team, pk=pk))


@team_required
@require_GET
def engines(request: TeamRequest) -> HttpResponse:
    """List builtin and the team's connections (price, durations, the default); a test run without JS shows here."""
    types = engine_types()
    restored = draft_load(request, DRAFT, EngineForm, initial={"type": types[0].type}, **_form_types(types))
    context: dict = {
        "engines": engines_to_api(team=request.team),
        "types": types,
        "model_types": _form_types(types)["model_types"],
        "active": "engines",
    }
    tested = once_pop(request, TEST_RESULT)
    if tested:
        context.update(tested_pk=tested["pk"], reason=tested["reason"])
    return connect_page(request, "generator/engines.html", context, restored=restored)


@team_required(back_to="generator:engines", draft=DRAFT, secret_fields=SECRET_FIELDS)
@require_POST
def engine_connect(request: TeamRequest) -> HttpResponse:
    """Connect an engine after its provider accepted the key; errors come back on the form, with what was typed."""
    require_manager(request)
    form = EngineForm(request.POST, **_form_types(engine_types()))
    return connect_from_form(
        request, form, engine_create, draft=DRAFT, secret_fields=SECRET_FIELDS, page="generator:engines"
    )


@team_required(back_to="generator:engines")
@require_POST
def engine_check(request: TeamRequest, pk: int) -> HttpResponse:
    """Test a connection with its provider's cheap authenticated call; say the upstream's reason if it fails."""
    require_manager(request)
    engine = _engine_or_404(request, pk)
    reason = engine_test(engine=engine)
    if request.htmx:
        return render(request, "generator/engines.html#test-result", {"tested_pk": engine.pk, "reason": reason})
    once_put(request, TEST_RESULT, {"pk": engine.pk, "reason": reason})
    return back(request, reverse("generator:engines") + f"#test-{engine.pk}")


@team_required(back_to="generator:engines")
@require_POST
def engine_default(request: TeamRequest) -> HttpResponse:
    """Make builtin or a connection the team's default engine (owners and admins)."""
    name = request.POST.get("engine", "")
    try:
        engine_set_default(team=request.team, user=request.user, name=name)
    except ValidationFailed as exc:
        messages.error(request, f"Not changed: {exc.message}.")
    else:
        messages.success(request, f"{name} is now the team's default engine.")
    return back(request, reverse("generator:engines"))


@team_required(back_to="generator:engines")
@require_POST
def engine_disconnect(request: TeamRequest, pk: int) -> HttpResponse:
    require_manager(request)
    engine = _engine_or_404(request, pk)
    was_default = request.team.default_engine_id == engine.pk
    engine_delete(team=request.team, engine=engine)
    said = f"Disconnected {engine.name}; the videos made on it stay in the gallery."
    messages.success(request, said + (" The team's default is builtin again." if was_default else ""))
    return back(request, reverse("generator:engines"))
