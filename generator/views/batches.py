"""Batches in the dashboard: the Batch mode of Generate, the Batches page (live progress), one batch, downloads."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from generator import selectors
from generator.errors import ValidationFailed
from generator.forms import BatchForm
from generator.middleware import TeamRequest
from generator.models import Batch
from generator.services.batch_exports import archive_filename, batch_archive_chunks, batch_csv_chunks, csv_filename
from generator.services.batches import batch_cancel as cancel_service
from generator.services.batches import batch_create as create_service
from generator.services.batches import batch_inputs_from_text, batch_retry_failed
from generator.services.uploads import upload_discard, upload_store
from generator.views.common import attachment, back, cancel_and_say, page, team_required
from generator.views.drafts import draft_discard, draft_save, form_errors
from generator.views.generate import BATCH_DRAFT
from generator.wording import plain

BATCHES_PAGE_SIZE = 20
ITEMS_PAGE_SIZE = 50


def batch_or_404(request: TeamRequest, pk) -> Batch:
    batch = selectors.batch_get(team=request.team, uuid=pk)
    if batch is None:
        raise Http404
    return batch


def batch_progress(batch: Batch, counts: dict[str, int], now) -> dict:
    """What a batch's row shows: counts, the share finished, and the time left at the current rate."""
    total = batch.item_count or 1
    ended = counts["DONE"] + counts["ERROR"] + counts["CANCELLED"]
    remaining = counts["PENDING"] + counts["PROCESSING"]
    seconds_left = None
    if batch.is_active and remaining:
        rate = selectors.batch_recent_rate(batch=batch, now=now)
        per_minute = batch.team.per_minute_limit
        # Never faster than the items can be submitted (the team's per-minute window).
        floor = counts["PENDING"] * 60 / per_minute
        seconds_left = max(remaining / rate, floor) if rate else None
    return {
        "batch": batch,
        "counts": counts,
        "ended": ended,
        "percent": round(100 * ended / total),
        "seconds_left": int(seconds_left) if seconds_left is not None else None,
        "failed": counts["ERROR"],
    }


def _inputs_of(request: TeamRequest, form: BatchForm, uploaded: list[str]) -> tuple[dict, dict]:
    """Return the API body fields naming the inputs, and how the source is described."""
    source = form.cleaned_data["batch_source"]
    if source == "folder":
        return (
            {"input_folder": form.cleaned_data["input_folder"].strip(), "recursive": form.cleaned_data["recursive"]},
            {},
        )
    if source == "files":
        files = form.cleaned_data["images"]
        if not files:
            raise ValidationFailed("no files", details={"images": ["choose one or more image files"]})
        for index, upload in enumerate(files):
            try:
                stored = upload_store(
                    team=request.team,
                    user=request.user,
                    data=upload.read(settings.GENERATOR_FETCH_MAX_BYTES + 1),
                    name=upload.name or "",
                )
            except ValidationFailed as exc:  # said of that file, in the words of the single upload
                said = plain("upload", exc.message)
                raise ValidationFailed(exc.message, details={f"inputs.{index}": [said]}) from None
            uploaded.append(stored)
        return {"inputs": list(uploaded)}, {"type": "uploads"}
    text = form.cleaned_data["url_list"]
    csv_file = form.cleaned_data.get("url_file")
    if csv_file is not None:
        text = csv_file.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE).decode("utf-8-sig", errors="replace")
    return {"inputs": batch_inputs_from_text(text)}, {"type": "csv" if csv_file is not None else "list"}


@team_required(back_to="generator:home?mode=batch", draft=BATCH_DRAFT)
@require_POST
def batch_new(request: TeamRequest) -> HttpResponse:
    """Start a batch from the Generate page's Batch mode, through the same service as the API."""
    form = BatchForm(request.POST, request.FILES)
    uploaded: list[str] = []
    if form.is_valid():
        try:
            fields, source = _inputs_of(request, form, uploaded)
            body = {**form.to_batch_body(), **fields}
            batch = create_service(team=request.team, body=body, user=request.user, source=source)
        except ValidationFailed as exc:
            form.add_api_errors(exc.details or {"": [exc.message]})
        else:
            draft_discard(request, BATCH_DRAFT)
            messages.success(
                request,
                f"Started a batch of {batch.item_count} videos ({batch.total_cost} credits in all, charged as each "
                "one starts).",
            )
            return redirect("generator:batch-detail", pk=batch.uuid)
    for uri in uploaded:
        upload_discard(team=request.team, uri=uri)
    # Post/Redirect/Get: the form comes back from its draft (files are not kept: chosen again).
    draft_save(request, BATCH_DRAFT, request.POST, errors=form_errors(form))
    return redirect(reverse("generator:home") + "?mode=batch")


@team_required
@require_GET
def batches(request: TeamRequest) -> HttpResponse:
    """List the team's batches, newest first; running ones update by themselves."""
    results = Paginator(selectors.batch_list(team=request.team), BATCHES_PAGE_SIZE).get_page(request.GET.get("page"))
    listed = list(results.object_list)
    counts = selectors.batch_counts(batch.pk for batch in listed)
    now = timezone.now()
    rows = [batch_progress(batch, counts[batch.pk], now) for batch in listed]
    return page(
        request, "generator/batches.html", {"page": results, "rows": rows, "active": "batches"}, partial="batch-list"
    )


@team_required
@require_GET
def batch_detail(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    """One batch: its progress and its items; for htmx, its progress row (286 once it has finished)."""
    batch = batch_or_404(request, pk)
    row = batch_progress(batch, selectors.batch_counts([batch.pk])[batch.pk], timezone.now())
    if request.htmx and request.GET.get("row"):
        response = render(request, "generator/batches.html#batch-row", {"row": row})
        if not batch.is_active and not row["counts"]["PROCESSING"]:
            return HttpResponseStopPolling(response.content)
        return response
    status = request.GET.get("status") or None
    if status not in selectors.ITEM_STATUSES:
        status = None
    items = Paginator(selectors.batch_items(batch=batch, status=status), ITEMS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "row": row,
        "batch": batch,
        "items": items,
        "status": status,
        "statuses": selectors.ITEM_STATUSES,
        "active": "batches",
        "filter_query": f"status={status}" if status else "",
    }
    return render(request, "generator/batch.html", context)


@team_required
@require_POST
def batch_cancel(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    batch = batch_or_404(request, pk)
    done = "Batch cancelled: videos not started yet were not charged (or were refunded)."
    return cancel_and_say(
        request, cancel_service, batch=batch, done=done, default=reverse("generator:batch-detail", args=[batch.uuid])
    )


@team_required
@require_POST
def batch_retry(request: TeamRequest, pk: uuid.UUID) -> HttpResponse:
    batch = batch_or_404(request, pk)
    try:
        retry = batch_retry_failed(team=request.team, batch=batch, user=request.user)
    except ValidationFailed as exc:
        details = "; ".join(message for messages_ in exc.details.values() for message in messages_) or exc.message
        messages.error(request, f"Could not retry: {details}.")
        return back(request, reverse("generator:batch-detail", args=[batch.uuid]))
    messages.success(request, f"Retrying {retry.item_count} failed videos as a new batch.")
    return redirect("generator:batch-detail", pk=retry.uuid)


@team_required
@require_GET
def batch_results(request: TeamRequest, pk: uuid.UUID) -> StreamingHttpResponse:
    batch = batch_or_404(request, pk)
    return attachment(batch_csv_chunks(batch), "text/csv; charset=utf-8", csv_filename(batch))


@team_required
@require_GET
def batch_archive(request: TeamRequest, pk: uuid.UUID) -> StreamingHttpResponse:
    batch = batch_or_404(request, pk)
    return attachment(batch_archive_chunks(batch), "application/zip", archive_filename(batch))
