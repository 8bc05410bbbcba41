"""What the Storages and Engines pages share: the connect form's round trip and the page that holds it.

Both connect something with a secret after a live test: the POST either saves it (and says so)
or keeps what was typed, secrets encrypted, as the draft the page rebuilds (docs/dashboard.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect

from generator.errors import ValidationFailed
from generator.middleware import TeamRequest
from generator.views.common import secret_page
from generator.views.drafts import Restored, draft_discard, draft_save, form_errors


class Named(Protocol):
    name: str


class ConnectForm(Protocol):
    def is_valid(self) -> bool: ...

    def connection(self) -> dict:
        """The service's keyword arguments for what was typed (name, type, parameters, ...)."""
        ...

    def add_api_errors(self, details: dict[str, list[str]]) -> None: ...


def connect_page(request: TeamRequest, template: str, context: dict, *, restored: Restored) -> HttpResponse:
    """Render a page holding a connect form; never cached while it shows a secret the user typed."""
    return secret_page(request, template, {**context, "form": restored.form}, shows_secret=restored.secret_shown)


def connect_from_form(
    request: TeamRequest,
    form: ConnectForm,
    connect: Callable[..., Named],
    *,
    draft: str,
    secret_fields: tuple[str, ...],
    page: str,
) -> HttpResponse:
    """Run the service `connect` on a valid form: saved and said, or back on the form with its errors and what was typed."""
    if form.is_valid():
        try:
            connected = connect(team=request.team, user=request.user, **form.connection())
        except ValidationFailed as exc:
            form.add_api_errors(exc.details or {"": [exc.message]})
        else:
            draft_discard(request, draft)
            messages.success(request, f"Connected {connected.name}.")
            return redirect(page)
    draft_save(request, draft, request.POST, errors=form_errors(form), secret_fields=secret_fields)  # type: ignore[arg-type]
    return redirect(page)  # no #fragment: app.js moves the focus to the field in error
