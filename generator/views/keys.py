"""The API keys page: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.forms import ApiKeyForm
from generator.middleware import TeamRequest
from generator.services import apikeys
from generator.views.common import back, found, require_manager, team_required


def _keys_context(request: TeamRequest, form: ApiKeyForm, **extra) -> dict:
    return {
        "keys": selectors.apikey_list(team=request.team),
        "form": form,
        "active": "keys",
        **extra,
    }


@team_required
@require_GET
def api_keys(request: TeamRequest) -> HttpResponse:
    return render(request, "generator/keys.html", _keys_context(request, ApiKeyForm()))


@team_required
@require_POST
def api_key_create(request: TeamRequest) -> HttpResponse:
    """Create a key and show its secret this once."""
    require_manager(request)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return render(request, "generator/keys.html", _keys_context(request, form), status=422)
    key, raw = apikeys.apikey_create(
        team=request.team,
        created_by=request.user,
        name=form.cleaned_data["name"],
        scopes=form.cleaned_data["scopes"],
    )
    response = render(
        request,
        "generator/keys.html",
        _keys_context(request, ApiKeyForm(), new_key=key, raw_key=raw),
    )
    response["Cache-Control"] = "no-store"
    return response


@team_required
@require_POST
def api_key_revoke(request: TeamRequest, pk: int) -> HttpResponse:
    require_manager(request)
    key = found(selectors.apikey_get(team=request.team, pk=pk))
    apikeys.apikey_revoke(team=request.team, key=key)
    messages.success(request, f"Revoked {key}.")
    return back(request, reverse("generator:keys"))
