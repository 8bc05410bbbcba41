"""The Generate page: submit a job through the same validator and service as the API."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from generator import selectors
from generator.errors import InsufficientCredits, RateLimited, ValidationFailed
from generator.forms import BatchForm, GenerateForm
from generator.middleware import TeamRequest
from generator.models import Generation
from generator.services.billing import member_spent_this_month
from generator.services.engine_connections import engines_to_api
from generator.services.submissions import generation_submit
from generator.shapes import photo_size, shape_choice
from generator.upstream.registry import BUILTIN
from generator.views.common import team_required
from generator.views.drafts import draft_discard, draft_load, draft_save, form_errors
from generator.wording import refusal

DRAFT = "generate"
BATCH_DRAFT = "batch"
INITIAL = GenerateForm.DEFAULTS


def generate_context(
    request: TeamRequest, form: GenerateForm | None = None, *, batch_form: BatchForm | None = None, **extra
) -> dict:
    """The Generate page's context: one video's form, or (mode "batch") the batch form."""
    if extra.get("mode") == "batch":
        form = form or GenerateForm(initial=INITIAL)
        batch_form = batch_form or BatchForm(initial={**INITIAL, "batch_source": "folder"})
    engines = engines_to_api(team=request.team)
    shown = batch_form if extra.get("mode") == "batch" else form
    return {
        "form": form,
        "batch_form": batch_form,
        "mode": extra.pop("mode", "single"),
        "engines": engines,
        "prices": _prices_of(engines, chosen=shown["engine"].value() if shown is not None else None),
        "storages": list(selectors.storage_list(team=request.team)),
        "spent_this_month": member_spent_this_month(team=request.team, user=request.user)
        if request.membership.monthly_cap is not None
        else None,
        "active": "generate",
        **extra,
    }


def _prices_of(engines: list[dict], *, chosen: str | None) -> dict[int, int]:
    """The credits per duration of the engine the form has chosen (else the team's default)."""
    engine = next((e for e in engines if e["name"] == chosen), None) or next(e for e in engines if e["is_default"])
    return {int(duration): price for duration, price in engine["price"].items()}


def _with_default_engine(request: TeamRequest, initial: dict) -> dict:
    """Preselect the team's default engine unless the starting point names one."""
    default = request.team.default_engine
    return {"engine": default.name if default is not None else BUILTIN, **initial}


def _starting_point(request: TeamRequest) -> tuple[dict, Generation | None]:
    """The form's starting values: the defaults, a job to edit and send again (?from=), or a photo (?input=)."""
    initial: dict = dict(INITIAL)
    source = None
    if request.GET.get("from") and _is_uuid(request.GET["from"]):
        source = selectors.generation_get(team=request.team, uuid=request.GET["from"])
        if source is not None:
            initial = GenerateForm.initial_from_request(source.request or {})
    elif request.GET.get("input"):
        initial.update(GenerateForm.initial_for_input(request.GET["input"][:2000]))
    return {**_with_default_engine(request, initial), "token": secrets.token_urlsafe(16)}, source


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@team_required
@require_GET
def home(request: TeamRequest) -> HttpResponse:
    """Show the Generate page: a fresh form, the draft the user left, or a job or photo to start from.

    For htmx with a photo's size, answer only the size of the photo's own shape (the shape picker asks).
    """
    if request.htmx and "photo_width" in request.GET:
        photo = photo_size(request.GET.get("photo_width"), request.GET.get("photo_height"))
        source = shape_choice("source", photo=photo, resolution=request.GET.get("resolution", ""))
        return render(request, "generator/_format_fields.html#source-size", {"shape": source})
    return _page(request)


def _page(request: TeamRequest) -> HttpResponse:
    recent = selectors.generation_recent(team=request.team, limit=5)
    if request.GET.get("mode") == "batch":
        batch = draft_load(
            request,
            BATCH_DRAFT,
            BatchForm,
            initial=_with_default_engine(request, {**INITIAL, "batch_source": "folder"}),
        )
        context = generate_context(
            request,
            GenerateForm(initial=INITIAL),
            batch_form=batch.form,
            recent=recent,
            mode="batch",
            notice=batch.notice,
            notice_level=batch.notice_level,
        )
        return render(request, "generator/generate.html", context)
    if request.GET.get("fresh") or request.GET.get("from") or request.GET.get("input"):
        draft_discard(request, DRAFT)  # an explicit start wins over an old draft
    if request.GET.get("fresh"):
        return redirect("generator:home")
    initial, editing_job = _starting_point(request)
    restored = draft_load(request, DRAFT, GenerateForm, initial=initial)
    context = generate_context(
        request,
        restored.form,
        recent=recent,
        notice=restored.notice,
        notice_level=restored.notice_level,
        has_draft=restored.from_draft,
        upload_again=restored.from_draft and restored.form.data.get("source") == "upload",
        editing_job=editing_job,
    )
    return render(request, "generator/generate.html", context)


@team_required(back_to="generator:home", draft=DRAFT)
@require_http_methods(["GET", "POST"])
def generate(request: TeamRequest) -> HttpResponse:
    """Submit the form (GET shows it): a job through the API's validator, or back to the form with the errors."""
    if request.method == "GET":
        return _page(request)
    form = GenerateForm(request.POST, request.FILES)
    notice = ""
    if form.is_valid():
        data = form.cleaned_data
        upload = data["upload"] if data["source"] == "upload" else None
        input_value = {"storage": data["storage_input"], "url": data["url"]}.get(data["source"], "").strip()
        try:
            submitted = generation_submit(
                team=request.team,
                user=request.user,
                body=form.to_body(input_value=input_value),
                token=data["token"],
                upload=upload.read(settings.GENERATOR_FETCH_MAX_BYTES + 1) if upload else None,
                upload_name=upload.name if upload else "",
            )
        except ValidationFailed as exc:
            form.add_api_errors(exc.details or {"": [exc.message]})
        except (RateLimited, InsufficientCredits) as exc:
            notice = refusal(exc)
        else:
            draft_discard(request, DRAFT)
            generation = submitted.generation
            if submitted.replayed:
                messages.info(request, "This form was already sent: here is the video it started (charged once).")
            else:
                messages.success(request, f"Started a {generation.duration} s video ({generation.cost} credits).")
            return redirect(reverse("generator:jobs") + f"#job-{generation.uuid}")
    draft_save(request, DRAFT, request.POST, errors=form_errors(form), notice=notice)
    return redirect("generator:home")
