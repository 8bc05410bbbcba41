"""Login lockouts with django-axes: who is counted, from which address, and what they see.

axes watches every call of django.contrib.auth.authenticate (the dashboard login, /admin/login/,
anything added later) and locks for AXES_COOLOFF_TIME after AXES_FAILURE_LIMIT failures (5 in 5
minutes, config/settings.py), keyed by the account alone and by account + client address:

- The account is the identity Django itself authenticates: the login form NFKC-normalises the
  email and the user manager looks it up case-insensitively, so the lockout key is the NFKC form,
  case-folded. A full-width or upper-case spelling of a locked email is the same locked account.
- The address is REMOTE_ADDR, or with BEHIND_PROXY the last X-Forwarded-For hop: the one the TLS
  proxy appended itself; the hops before it are whatever the client sent.
- The lockout answer is the login page it came from (dashboard or admin) with one message, 429.
"""

from __future__ import annotations

import unicodedata

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.forms.utils import ErrorList
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from ipware import get_client_ip

LOCKOUT_MESSAGE = "Too many failed attempts. Wait {minutes} minutes and try again, or reset your password."


def lockout_message() -> str:
    """Return the one message a locked-out login sees."""
    return LOCKOUT_MESSAGE.format(minutes=max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)))


def login_identity(request: HttpRequest | None, credentials: dict | None) -> str | None:
    """Return the account a login attempt is for, normalised as Django's authentication reads it."""
    credentials = credentials or {}
    raw = credentials.get("username") or credentials.get("email")
    if raw is None and request is not None:
        raw = request.POST.get("username")
    if not isinstance(raw, str):
        return None
    return unicodedata.normalize("NFKC", raw).strip().casefold() or None


def client_ip(request: HttpRequest) -> str | None:
    """Return the client's address: REMOTE_ADDR, or the hop our TLS proxy appended to X-Forwarded-For."""
    if not settings.BEHIND_PROXY:
        return request.META.get("REMOTE_ADDR")
    # proxy_count=0, non-strict: the last entry of the chain, whatever the client put before it.
    ip, _routable = get_client_ip(
        request, proxy_count=0, request_header_order=["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"], strict=False
    )
    return ip or request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials=None) -> HttpResponse:
    """Answer a locked-out attempt with the same login page and the lockout message (429)."""
    context = getattr(original_response, "context_data", None) or {}
    form = context.get("form")
    if isinstance(original_response, TemplateResponse) and form is not None:
        form._errors = form._errors or {}
        form._errors["__all__"] = ErrorList([lockout_message()])
        response = TemplateResponse(request, original_response.template_name, context, status=429)
        return response.render()
    return HttpResponse(lockout_message(), status=429, content_type="text/plain; charset=utf-8")


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, except for authenticate() calls without a request.

    Those come from code running on the server (a shell, a management command, a test), never from a
    client; axes would raise on them, and there is no client address to count.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
