"""The Generate page: submit a job through the same validator and service as the API."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.errors import InsufficientCredits, RateLimited, ValidationFailed
from generator.forms import BatchForm, GenerateForm
from generator.middleware import TeamRequest
from generator.services.billing import PRICE_BY_DURATION, member_spent_this_month
from generator.services.generations import generation_create, parse_generate_request
from generator.services.uploads import upload_discard, upload_store
from generator.views.common import refusal, team_required


def generate_context(
    request: TeamRequest, form: GenerateForm | None = None, *, batch_form: BatchForm | None = None, **extra
) -> dict:
    """The Generate page's context: one video's form, or (mode "batch") the batch form."""
    if extra.get("mode") == "batch":
        form = form or GenerateForm(initial=INITIAL)
        batch_form = batch_form or BatchForm(initial={**INITIAL, "batch_source": "folder"})
    return {
        "form": form,
        "batch_form": batch_form,
        "mode": extra.pop("mode", "single"),
        "prices": PRICE_BY_DURATION,
        "storages": list(selectors.storage_list(team=request.team)),
        "spent_this_month": member_spent_this_month(team=request.team, user=request.user)
        if request.membership.monthly_cap is not None
        else None,
        "active": "generate",
        **extra,
    }


INITIAL = {"source": "url", "prompt_mode": "text", "duration": 5, "output_mode": "temporary"}


@team_required
@require_GET
def home(request: TeamRequest) -> HttpResponse:
    """Show the Generate page."""
    recent = selectors.generation_recent(team=request.team, limit=5)
    mode = "batch" if request.GET.get("mode") == "batch" else "single"
    context = generate_context(request, GenerateForm(initial=INITIAL), recent=recent, mode=mode)
    return render(request, "generator/generate.html", context)


@team_required
@require_POST
def generate(request: TeamRequest) -> HttpResponse:
    """Submit a job through the same validator and service as the API."""
    form = GenerateForm(request.POST, request.FILES)
    refused, status, uploaded = "", 422, None
    if form.is_valid():
        source = form.cleaned_data["source"]
        try:
            if source == "upload":
                upload = form.cleaned_data["upload"]
                if upload is None:
                    raise ValidationFailed("no file", details={"input": ["choose an image file to upload"]})
                input_value = uploaded = upload_store(
                    team=request.team,
                    user=request.user,
                    data=upload.read(settings.GENERATOR_FETCH_MAX_BYTES + 1),
                )
            elif source == "storage":
                input_value = form.cleaned_data["storage_input"].strip()
            else:
                input_value = form.cleaned_data["url"].strip()
            generate_request = parse_generate_request(form.to_body(input_value=input_value), team=request.team)
            result = generation_create(team=request.team, request=generate_request, user=request.user)
        except ValidationFailed as exc:
            form.add_api_errors(exc.details or {"": [exc.message]})
        except (RateLimited, InsufficientCredits) as exc:
            refused, status = refusal(exc), exc.status
        else:
            generation = result.generation
            messages.success(
                request,
                f"Started a {generation.duration} s video ({generation.cost} credits).",
            )
            return redirect(reverse("generator:jobs") + f"#job-{generation.uuid}")
    if uploaded:
        upload_discard(team=request.team, uri=uploaded)
    request.team.balance = selectors.team_balance(team=request.team)
    return render(
        request,
        "generator/generate.html",
        generate_context(request, form, refusal=refused),
        status=status,
    )
