"""The Storages page: connect, test, browse (with thumbnails) and disconnect storages."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from generator import selectors
from generator.forms import StorageForm
from generator.middleware import TeamRequest
from generator.services.storage_connections import storage_check as run_storage_check
from generator.services.storage_connections import storage_create, storage_delete, storage_folder_list
from generator.services.thumbnails import thumbnail_jpeg
from generator.storage.base import IMAGE_EXTENSIONS, StorageError
from generator.storage.registry import supported_types
from generator.storage.uris import KeyRejected, validate_key
from generator.views.common import back, page, require_manager, storage_or_404, team_required
from generator.views.connections import connect_from_form, connect_page
from generator.views.drafts import draft_load, once_pop, once_put

DRAFT = "storage"
SECRET_FIELDS = ("secret_access_key", "service_account")
CHECK_RESULT = "storage-check"


@team_required
@require_GET
def storages(request: TeamRequest) -> HttpResponse:
    """List connected storages and offer to connect one; a connection test run without JS shows here."""
    restored = draft_load(request, DRAFT, StorageForm, initial={"type": "local"}, types=supported_types())
    context: dict = {"storages": selectors.storage_list(team=request.team), "active": "storages"}
    checked = once_pop(request, CHECK_RESULT)
    if checked:
        context.update(storage=selectors.storage_get(team=request.team, pk=checked["pk"]), report=checked["report"])
    return connect_page(request, "generator/storages.html", context, restored=restored)


@team_required(back_to="generator:storages", draft=DRAFT, secret_fields=SECRET_FIELDS)
@require_POST
def storage_connect(request: TeamRequest) -> HttpResponse:
    """Connect a storage after the service has checked it; errors come back on the form, with what was typed."""
    require_manager(request)
    form = StorageForm(request.POST, types=supported_types())
    return connect_from_form(
        request, form, storage_create, draft=DRAFT, secret_fields=SECRET_FIELDS, page="generator:storages"
    )


@team_required(back_to="generator:storages")
@require_POST
def storage_check(request: TeamRequest, pk: int) -> HttpResponse:
    """Run the connection test (list, write, read, delete a probe) and show each step."""
    require_manager(request)  # it writes into the bucket: owners and admins only (docs/security.md)
    storage = storage_or_404(request, pk)
    report = run_storage_check(storage=storage)
    if request.htmx:
        context = {"storage": storage, "report": report}
        return render(request, "generator/storages.html#check-result", context)
    once_put(
        request,
        CHECK_RESULT,
        {"pk": storage.pk, "report": {"ok": report.ok, "steps": [asdict(s) for s in report.steps]}},
    )
    return redirect(reverse("generator:storages") + f"#check-{storage.pk}")


@team_required(back_to="generator:storages")
@require_POST
def storage_disconnect(request: TeamRequest, pk: int) -> HttpResponse:
    require_manager(request)
    storage = storage_or_404(request, pk)
    storage_delete(team=request.team, storage=storage)
    messages.success(request, f"Disconnected {storage.name}; its files were not touched.")
    return back(request, reverse("generator:storages"))


def _folder(value: str | None) -> str:
    folder = (value or "").strip().lstrip("/")
    if folder and not folder.endswith("/"):
        folder += "/"
    if folder:
        try:
            validate_key(folder)
        except KeyRejected:
            raise Http404 from None
    return folder


@team_required
@require_GET
def storage_browse(request: TeamRequest, pk: int) -> HttpResponse:
    """Browse one folder level of a storage; in picker mode clicking an image selects it."""
    storage = storage_or_404(request, pk)
    folder = _folder(request.GET.get("folder"))
    entries, error = [], ""
    try:
        entries = storage_folder_list(storage=storage, folder=folder)
    except StorageError as exc:
        error = str(exc)
    parts = [p for p in folder.split("/") if p]
    crumbs = [{"name": p, "folder": "/".join(parts[: i + 1]) + "/"} for i, p in enumerate(parts)]
    context = {
        "storage": storage,
        "folder": folder,
        "crumbs": crumbs,
        "parent": "/".join(parts[:-1]) + "/" if len(parts) > 1 else "",
        "folders": [e for e in entries if e.is_folder],
        "files": [e for e in entries if not e.is_folder],
        "image_exts": IMAGE_EXTENSIONS,
        # "1": clicking an image picks it; "folder": a button picks the folder shown (batches).
        "pick": request.GET.get("pick") if request.GET.get("pick") in {"1", "folder"} else "",
        "error": error,
        "active": "storages",
    }
    return page(request, "generator/storage_browse.html", context, partial="browser")


@team_required
@require_GET
@cache_control(private=True, max_age=300)
def storage_thumbnail(request: TeamRequest, pk: int) -> HttpResponse:
    """Answer a small JPEG thumbnail of one image in a team storage."""
    storage = storage_or_404(request, pk)
    thumbnail = thumbnail_jpeg(storage=storage, key=request.GET.get("key", ""))
    response = HttpResponse(thumbnail.jpeg, content_type="image/jpeg")
    # The Generate page's shape picker reads the photo's own size from here (static/generator/shapes.js).
    response["X-Image-Size"] = f"{thumbnail.width}x{thumbnail.height}"
    return response
