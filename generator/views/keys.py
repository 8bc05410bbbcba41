"""The API keys page: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.forms import ApiKeyForm
from generator.middleware import TeamRequest
from generator.services import apikeys
from generator.views.common import back, found, require_manager, secret_page, team_required
from generator.views.drafts import draft_discard, draft_load, draft_save, form_errors, once_pop, once_put

DRAFT = "api-key"
NEW_KEY = "api-key"


@team_required
@require_GET
def api_keys(request: TeamRequest) -> HttpResponse:
    """List the keys and offer to create one; a key just created is shown here, once."""
    new = once_pop(request, NEW_KEY)
    context = {
        "keys": selectors.apikey_list(team=request.team),
        "form": draft_load(request, DRAFT, ApiKeyForm).form,
        "new_key": selectors.apikey_get(team=request.team, pk=new["id"]) if new else None,
        "raw_key": new["raw"] if new else "",
        "active": "keys",
    }
    return secret_page(request, "generator/keys.html", context, shows_secret=bool(new))


@team_required(back_to="generator:keys", draft=DRAFT)
@require_POST
def api_key_create(request: TeamRequest) -> HttpResponse:
    """Create a key; the keys page shows its secret once (a reload shows it no more and creates nothing)."""
    require_manager(request)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        draft_save(request, DRAFT, request.POST, errors=form_errors(form))
        return redirect("generator:keys")
    key, raw = apikeys.apikey_create(
        team=request.team,
        created_by=request.user,
        name=form.cleaned_data["name"],
        scopes=form.cleaned_data["scopes"],
    )
    draft_discard(request, DRAFT)
    once_put(request, NEW_KEY, {"id": key.pk, "raw": raw})
    return redirect(reverse("generator:keys") + "#new-key")


@team_required(back_to="generator:keys")
@require_POST
def api_key_revoke(request: TeamRequest, pk: int) -> HttpResponse:
    require_manager(request)
    key = found(selectors.apikey_get(team=request.team, pk=pk))
    apikeys.apikey_revoke(team=request.team, key=key)
    messages.success(request, f"Revoked {key}.")
    return back(request, reverse("generator:keys"))
