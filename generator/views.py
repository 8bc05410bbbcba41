"""The dashboard: function views that call services and selectors; one URL serves a page and its fragments."""

from __future__ import annotations

import functools
import io
import uuid
from datetime import date
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling
from PIL import Image, ImageOps, UnidentifiedImageError

from generator import selectors
from generator.errors import (
    Conflict,
    Forbidden,
    GeneratorError,
    InsufficientCredits,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from generator.forms import (
    ApiKeyForm,
    GenerateForm,
    InviteAcceptForm,
    InviteForm,
    MemberForm,
    StorageForm,
    ThrottledAuthenticationForm,
)
from generator.middleware import SESSION_TEAM_KEY
from generator.models import Generation, Invite, Membership, Storage
from generator.schemas import parse_generate_request
from generator.services import apikeys, links, teams
from generator.services.billing import (
    PRICE_BY_DURATION,
    member_spent_this_month,
    month_start,
)
from generator.services.generations import (
    generation_cancel,
    generation_create,
    generation_delete,
    generation_retry,
)
from generator.services.storages import storage_check as run_storage_check
from generator.services.storages import storage_create, storage_delete
from generator.services.uploads import upload_discard, upload_store
from generator.services.webhooks import webhook_configure
from generator.storage.base import StorageError
from generator.storage.registry import get_connector, supported_types
from generator.storage.uris import KeyRejected, validate_key

GALLERY_PAGE_SIZE = 24
JOBS_PAGE_SIZE = 20
LEDGER_PAGE_SIZE = 50
THUMB_MAX_BYTES = 15 * 1024 * 1024
THUMB_SIDE_PX = 240

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")


# --- helpers ------------------------------------------------------------------------------


def team_required(view):
    """Require login and a team; show a friendly page to a user who is in no team."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.membership:
            return render(request, "generator/no_team.html", status=403)
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            raise Http404 from None
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from None

    return wrapper


def _require_manager(request: HttpRequest) -> None:
    if not request.membership.can_manage:
        raise PermissionDenied("only owners and admins can do this")


def _page(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    partial: str | None = None,
    status: int = 200,
):
    """Render the whole page, or only `partial` for an htmx request."""
    name = f"{template}#{partial}" if partial and request.htmx else template
    return render(request, name, context, status=status)


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to a safe `next` (or the default); htmx requests get a client-side redirect."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    if request.htmx:
        return HttpResponseClientRedirect(target)
    return redirect(target)


def _generation(request: HttpRequest, pk) -> Generation:
    generation = selectors.generation_get(team=request.team, uuid=pk)
    if generation is None:
        raise Http404
    return generation


def _storage(request: HttpRequest, pk: int) -> Storage:
    storage = selectors.storage_get(team=request.team, pk=pk)
    if storage is None:
        raise Http404
    return storage


def _refusal(exc: GeneratorError) -> str:
    """Explain a refused submission and say when to try again."""
    if isinstance(exc, RateLimited):
        rate = exc.rate
        return (
            f"Too many videos started at once: this team may start {rate.per_second} per second and "
            f"{rate.per_minute} per minute. Nothing was charged. Try again in {max(1, rate.reset_s)} s."
        )
    message = exc.message[:1].upper() + exc.message[1:]
    if "cap" in exc.message:
        return f"{message}. Nothing was charged. Your cap resets on the 1st; a team owner or admin can raise it."
    return f"{message}. Nothing was charged. Ask your operator to add credits (or wait for the monthly allowance), then try again."


# --- accounts -----------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Django's login view with a throttled form (5 failures per email and address in 5 minutes)."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Open an invite link: create the account (or join with the signed-in one)."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    invite = teams.invite_get_valid(token=token)
    if invite is None:
        return render(request, "registration/invite_invalid.html", status=404)
    signed_in = request.user.is_authenticated
    form = InviteAcceptForm(request.POST or None) if not signed_in else None
    error = ""
    if request.method == "POST" and (signed_in or form.is_valid()):
        try:
            membership = teams.invite_accept(
                invite=invite,
                password=None if signed_in else form.cleaned_data["password1"],
                name="" if signed_in else form.cleaned_data["name"],
                user=request.user if signed_in else None,
            )
        except ValidationFailed as exc:
            for message in exc.details.get("password", [exc.message]):
                form.add_error("password1", message)
        except (Conflict, Forbidden) as exc:
            error = exc.message
        else:
            if not signed_in:
                auth_login(
                    request,
                    membership.user,
                    backend="django.contrib.auth.backends.ModelBackend",
                )
            request.session[SESSION_TEAM_KEY] = membership.team_id
            messages.success(request, f"Welcome to {membership.team.name}.")
            return redirect("generator:home")
    return render(
        request,
        "registration/invite_accept.html",
        {"invite": invite, "form": form, "error": error},
    )


# --- generate -------------------------------------------------------------------------------


def _generate_context(request: HttpRequest, form: GenerateForm, **extra) -> dict:
    return {
        "form": form,
        "prices": PRICE_BY_DURATION,
        "storages": list(selectors.storage_list(team=request.team)),
        "spent_this_month": member_spent_this_month(team=request.team, user=request.user)
        if request.membership.monthly_cap is not None
        else None,
        "active": "generate",
        **extra,
    }


@team_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Show the Generate page."""
    form = GenerateForm(
        initial={
            "source": "url",
            "prompt_mode": "text",
            "duration": 5,
            "output_mode": "temporary",
        }
    )
    recent = list(selectors.generation_list(team=request.team).select_related("created_by")[:5])
    return render(
        request,
        "generator/generate.html",
        _generate_context(request, form, recent=recent),
    )


@team_required
@require_POST
def generate(request: HttpRequest) -> HttpResponse:
    """Submit a job through the same validator and service as the API."""
    form = GenerateForm(request.POST, request.FILES)
    refusal, status, uploaded = "", 422, None
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
            refusal, status = _refusal(exc), exc.status
        else:
            generation = result.generation
            messages.success(
                request,
                f"Started a {generation.duration} s video ({generation.cost} credits).",
            )
            return redirect(reverse("generator:jobs") + f"#job-{generation.uuid}")
    if uploaded:
        upload_discard(team=request.team, uri=uploaded)
    request.team.refresh_from_db(fields=["balance"])
    return render(
        request,
        "generator/generate.html",
        _generate_context(request, form, refusal=refusal),
        status=status,
    )


# --- jobs -----------------------------------------------------------------------------------


@team_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    """List the team's jobs, newest first; active rows poll themselves."""
    qs = selectors.generation_jobs_with_queue(team=request.team)
    page = Paginator(qs, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    return _page(
        request,
        "generator/jobs.html",
        {"page": page, "active": "jobs"},
        partial="job-list",
    )


@team_required
@require_GET
def job_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Show one job; for htmx, its row, answering 286 once the job has ended so polling stops."""
    generation = selectors.generation_jobs_with_queue(team=request.team).filter(uuid=pk).first()
    if generation is None:
        raise Http404
    context = {"job": generation, "active": "jobs"}
    if request.htmx:
        response = render(request, "generator/jobs.html#job-row", context)
        if not generation.is_active:
            # The job ended: stop polling and refresh the header balance (a failed job is refunded).
            balance = render_to_string(
                "base.html#balance",
                {"team": request.team, "oob": True},
                request=request,
            )
            return HttpResponseStopPolling(response.content + balance.encode())
        return response
    context["card"] = _card(generation, timezone.now())
    return render(request, "generator/job.html", context)


@team_required
@require_POST
def job_cancel(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    generation = _generation(request, pk)
    try:
        generation_cancel(team=request.team, generation=generation)
    except Conflict as exc:
        messages.error(request, f"Could not cancel: {exc.message}.")
    else:
        messages.success(request, "Cancelled; the credits were given back.")
    return _back(request, reverse("generator:jobs"))


@team_required
@require_POST
def job_retry(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    generation = _generation(request, pk)
    try:
        result = generation_retry(team=request.team, user=request.user, generation=generation)
    except (RateLimited, InsufficientCredits) as exc:
        messages.error(request, _refusal(exc))
    except ValidationFailed as exc:
        details = "; ".join(m for msgs in exc.details.values() for m in msgs) or exc.message
        messages.error(request, f"Could not retry: {details}")
    else:
        messages.success(request, f"Retried as a new job ({result.generation.cost} credits).")
    return _back(request, reverse("generator:jobs"))


@team_required
@require_POST
def video_delete(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    generation = _generation(request, pk)
    try:
        generation_delete(team=request.team, user=request.user, generation=generation)
    except Conflict as exc:
        messages.error(request, f"Not deleted: {exc.message}.")
    else:
        messages.success(request, "Video deleted; its link no longer works.")
    return _back(request, reverse("generator:gallery"))


# --- gallery --------------------------------------------------------------------------------


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _card(generation: Generation, now) -> dict:
    """What one gallery card shows: links and time left are computed, not stored."""
    video_url = expires_at = None
    done = generation.status == Generation.Status.DONE
    expired = done and (generation.purged_at is not None or links.link_is_expired(generation))
    # A storage output whose storage was disconnected has no file to link to any more.
    disconnected = done and not expired and not links.link_is_available(generation)
    if done and not expired and not disconnected:
        video_url = links.link_url(generation, file="video")
        expires_at = links.link_expires_at(generation)
    return {
        "job": generation,
        "video_url": video_url,
        "expired": expired,
        "disconnected": disconnected,
        "expires_at": expires_at,
        "seconds_left": int((expires_at - now).total_seconds()) if expires_at else None,
        "prompt": _prompt_text(generation),
    }


def _prompt_text(generation: Generation) -> str:
    prompt = (generation.request or {}).get("options", {}).get("prompt")
    if isinstance(prompt, dict):
        return generation.generated_prompt or "Auto" + (
            f" — {prompt['guidelines']}" if prompt.get("guidelines") else ""
        )
    return prompt or ""


@team_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """Show the team's videos as a paginated grid with filters."""
    status = request.GET.get("status") or None
    if status not in Generation.Status.values:
        status = None
    try:
        member_id = int(request.GET["member"]) if request.GET.get("member") else None
    except ValueError:
        member_id = None
    date_from, date_to = (
        _parse_date(request.GET.get("from")),
        _parse_date(request.GET.get("to")),
    )
    qs = selectors.generation_gallery(
        team=request.team,
        status=status,
        member_id=member_id,
        date_from=date_from,
        date_to=date_to,
    )
    page = Paginator(qs, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    filters = {
        k: v
        for k, v in {
            "status": status,
            "member": member_id,
            "from": date_from,
            "to": date_to,
        }.items()
        if v
    }
    context = {
        "page": page,
        "cards": [_card(g, now) for g in page.object_list],
        "members": selectors.member_list(team=request.team),
        "statuses": Generation.Status.choices,
        "filters": filters,
        "filter_query": urlencode(filters),
        "active": "gallery",
    }
    return _page(request, "generator/gallery.html", context, partial="gallery-results")


@team_required
@require_GET
@cache_control(private=True, max_age=3600)
def poster(request: HttpRequest, pk: uuid.UUID) -> FileResponse:
    """Serve a video's poster (kept even after the video expires) to members of its team."""
    generation = _generation(request, pk)
    if not generation.poster_name or not default_storage.exists(generation.poster_name):
        raise Http404
    return FileResponse(default_storage.open(generation.poster_name, "rb"), content_type="image/jpeg")


# --- storages -------------------------------------------------------------------------------


@team_required
@require_GET
def storages(request: HttpRequest) -> HttpResponse:
    """List connected storages and offer to connect one."""
    context = {
        "storages": selectors.storage_list(team=request.team),
        "form": StorageForm(types=supported_types(), initial={"type": "local"}),
        "active": "storages",
    }
    return render(request, "generator/storages.html", context)


@team_required
@require_POST
def storage_connect(request: HttpRequest) -> HttpResponse:
    """Connect a storage after the service has checked it; errors come back on the form."""
    _require_manager(request)
    form = StorageForm(request.POST, types=supported_types())
    if form.is_valid():
        try:
            storage = storage_create(
                team=request.team,
                user=request.user,
                name=form.cleaned_data["name"].strip(),
                type=form.cleaned_data["type"],
                parameters=form.parameters(),
            )
        except ValidationFailed as exc:
            form.add_api_errors(exc.details or {"": [exc.message]})
        else:
            messages.success(request, f"Connected {storage.name}.")
            return redirect("generator:storages")
    context = {
        "storages": selectors.storage_list(team=request.team),
        "form": form,
        "active": "storages",
    }
    return render(request, "generator/storages.html", context, status=422)


@team_required
@require_POST
def storage_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the connection test (list, write, read, delete a probe) and show each step."""
    _require_manager(request)  # it writes into the bucket: owners and admins only (SPEC 10)
    storage = _storage(request, pk)
    report = run_storage_check(storage=storage)
    context = {
        "storage": storage,
        "report": report,
        "storages": selectors.storage_list(team=request.team),
    }
    if request.htmx:
        return render(request, "generator/storages.html#check-result", context)
    context.update(form=StorageForm(types=supported_types()), active="storages")
    return render(request, "generator/storages.html", context)


@team_required
@require_POST
def storage_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    storage = _storage(request, pk)
    storage_delete(team=request.team, storage=storage)
    messages.success(request, f"Disconnected {storage.name}; its files were not touched.")
    return _back(request, reverse("generator:storages"))


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
def storage_browse(request: HttpRequest, pk: int) -> HttpResponse:
    """Browse one folder level of a storage; in picker mode clicking an image selects it."""
    storage = _storage(request, pk)
    folder = _folder(request.GET.get("folder"))
    entries, error = [], ""
    try:
        entries = get_connector(storage).list(folder)
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
        "image_exts": IMAGE_EXTS,
        "pick": request.GET.get("pick") == "1",
        "error": error,
        "active": "storages",
    }
    return _page(request, "generator/storage_browse.html", context, partial="browser")


@team_required
@require_GET
@cache_control(private=True, max_age=300)
def storage_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    """Read one image from a team storage and answer a small JPEG thumbnail."""
    storage = _storage(request, pk)
    try:
        key = validate_key(request.GET.get("key", ""), allow_folder=False)
        data = get_connector(storage).read(key, max_bytes=THUMB_MAX_BYTES)
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP", "HEIF"]) as image:
            image.draft("RGB", (THUMB_SIDE_PX, THUMB_SIDE_PX))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((THUMB_SIDE_PX, THUMB_SIDE_PX))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
    except (
        KeyRejected,
        StorageError,
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombError,
    ):
        raise Http404 from None
    return HttpResponse(out.getvalue(), content_type="image/jpeg")


# --- credits --------------------------------------------------------------------------------


def _chart(days: list[tuple]) -> dict:
    """Lay out a bar chart of daily credits as SVG coordinates (drawn by the template)."""
    width, height, pad, right = 720, 180, 24, 24
    top = max((credits for _, credits in days), default=0) or 1
    slot = (width - pad - right) / max(len(days), 1)
    bars = []
    for i, (day, credits) in enumerate(days):
        h = round((height - pad) * credits / top, 1)
        bars.append(
            {
                "x": round(pad + i * slot + 2, 1),
                "y": round(height - pad - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "day": day,
                "credits": credits,
                "label": i % 5 == 0 or i == len(days) - 1,
            }
        )
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "top": top,
        "bars": bars,
        "base": height - pad,
        "total": sum(c for _, c in days),
    }


@team_required
@require_GET
def credits(request: HttpRequest) -> HttpResponse:
    """Show the balance, this month's usage by member, a 30-day chart and the ledger."""
    since = month_start(timezone.now())
    usage = selectors.usage_by_member(team=request.team, since=since)
    page = Paginator(selectors.ledger_list(team=request.team), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "usage": usage,
        "usage_total": sum(row["credits"] for row in usage),
        "month": since,
        "chart": _chart(selectors.usage_daily(team=request.team, days=30)),
        "page": page,
        "active": "credits",
    }
    return _page(request, "generator/credits.html", context, partial="ledger")


# --- API keys -------------------------------------------------------------------------------


def _keys_context(request: HttpRequest, form: ApiKeyForm, **extra) -> dict:
    return {
        "keys": selectors.apikey_list(team=request.team),
        "form": form,
        "active": "keys",
        **extra,
    }


@team_required
@require_GET
def api_keys(request: HttpRequest) -> HttpResponse:
    return render(request, "generator/keys.html", _keys_context(request, ApiKeyForm()))


@team_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    """Create a key and show its secret this once."""
    _require_manager(request)
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
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    key = selectors.apikey_get(team=request.team, pk=pk)
    if key is None:
        raise Http404
    apikeys.apikey_revoke(team=request.team, key=key)
    messages.success(request, f"Revoked {key}.")
    return _back(request, reverse("generator:keys"))


# --- team -----------------------------------------------------------------------------------


def _team_context(request: HttpRequest, **extra) -> dict:
    spent = {
        row["user_id"]: row["credits"]
        for row in selectors.usage_by_member(team=request.team, since=month_start(timezone.now()))
    }
    members = [
        {
            "m": m,
            "spent": spent.get(m.user_id, 0),
            "form": MemberForm(
                initial={"role": m.role, "monthly_cap": m.monthly_cap},
                prefix=f"m{m.pk}",
            ),
        }
        for m in selectors.member_list(team=request.team)
    ]
    invites = Invite.objects.filter(team=request.team, used_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-created_at"
    )
    return {
        "deliveries": selectors.webhook_delivery_list(team=request.team) if request.membership.can_manage else [],
        "members": members,
        "invites": invites,
        "invite_form": InviteForm(),
        "active": "team",
        **extra,
    }


@team_required
@require_GET
def team(request: HttpRequest) -> HttpResponse:
    return render(request, "generator/team.html", _team_context(request))


@team_required
@require_POST
def team_invite(request: HttpRequest) -> HttpResponse:
    """Create an invite link (shown once) for an email and a role."""
    _require_manager(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invite, raw = teams.invite_create(
                team=request.team,
                actor=request.membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationFailed as exc:
            for field, msgs in exc.details.items():
                for message in msgs:
                    form.add_error(field if field in form.fields else None, message)
        else:
            link = request.build_absolute_uri(reverse("generator:invite-accept", args=[raw]))
            response = render(
                request,
                "generator/team.html",
                _team_context(request, invite_link=link, new_invite=invite),
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "generator/team.html",
        _team_context(request, invite_form=form),
        status=422,
    )


@team_required
@require_POST
def team_webhook(request: HttpRequest) -> HttpResponse:
    """Set or clear the team's webhook URL; a new signing secret is shown once."""
    _require_manager(request)
    had_secret = bool(request.team.webhook_secret)
    try:
        secret = webhook_configure(team=request.team, url=request.POST.get("webhook_url", ""))
    except ValidationFailed as exc:
        errors = [m for msgs in exc.details.values() for m in msgs] or [exc.message]
        return render(
            request,
            "generator/team.html",
            _team_context(request, webhook_errors=errors),
            status=422,
        )
    if not secret:
        messages.success(request, "Webhook removed.")
        return redirect("generator:team")
    if had_secret:
        messages.success(request, "Webhook URL saved; the signing secret is unchanged.")
        return redirect("generator:team")
    response = render(request, "generator/team.html", _team_context(request, webhook_secret=secret))
    response["Cache-Control"] = "no-store"
    return response


def _membership(request: HttpRequest, pk: int) -> Membership:
    membership = Membership.objects.select_related("user").filter(team=request.team, pk=pk).first()
    if membership is None:
        raise Http404
    return membership


@team_required
@require_POST
def member_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a member's role and monthly cap."""
    _require_manager(request)
    membership = _membership(request, pk)
    form = MemberForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(
            request,
            "Enter a role and a whole number of credits (or leave the cap empty).",
        )
        return redirect("generator:team")
    try:
        teams.member_update(
            team=request.team,
            actor=request.membership,
            membership=membership,
            role=form.cleaned_data["role"],
            monthly_cap=form.cleaned_data["monthly_cap"],
        )
    except (Conflict, ValidationFailed) as exc:
        messages.error(request, f"Not changed: {exc.message}.")
    else:
        messages.success(request, f"Updated {membership.user.display_name}.")
    return redirect("generator:team")


@team_required
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a member; their API keys in this team are revoked."""
    membership = _membership(request, pk)
    try:
        revoked = teams.member_remove(team=request.team, actor=request.membership, membership=membership)
    except Conflict as exc:
        messages.error(request, f"Not removed: {exc.message}.")
        return redirect("generator:team")
    messages.success(
        request,
        f"Removed {membership.user.display_name}; {revoked} API key(s) revoked.",
    )
    if membership.user_id == request.user.id:
        request.session.pop(SESSION_TEAM_KEY, None)
        return redirect("generator:home")
    return redirect("generator:team")


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's teams the current one."""
    try:
        membership = teams.team_switch(user=request.user, team_id=int(request.POST.get("team", "")))
    except (NotFound, ValueError):
        raise Http404 from None
    request.session[SESSION_TEAM_KEY] = membership.team_id
    messages.success(request, f"Switched to {membership.team.name}.")
    return _back(request, reverse("generator:home"))
