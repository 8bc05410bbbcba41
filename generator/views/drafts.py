"""What the user typed, kept in the session: Post/Redirect/Get without losing work (docs/dashboard.md).

A form POST never answers with a page. On an error the view saves a *draft* (the posted values, the
errors, an optional notice) and redirects to the page that shows the form; that page rebuilds the
form from the draft. The draft stays until the form is sent successfully or discarded, so a reload
or coming back later shows the same values. A POST refused because the session ended is saved the
same way before the login round trip (`team_required(draft=...)`).

Secret fields (a bucket's secret key) are kept encrypted and shown once. A secret the user must see
once after a successful POST (a new API key, an invite link) passes through `once_put`/`once_pop`,
encrypted too, so a reload neither repeats the POST nor shows the secret again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django import forms
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import NON_FIELD_ERRORS
from django.forms.utils import ErrorDict
from django.http import HttpRequest, QueryDict

from generator.crypto import decrypt_json, encrypt_json

DRAFTS_KEY = "dashboard_drafts"
ONCE_KEY = "dashboard_once"
NOT_KEPT = ("csrfmiddlewaretoken",)
# A draft is what a person typed into a form: anything larger is not kept (the session is stored whole).
MAX_DRAFT_CHARS = 64_000

FormT = TypeVar("FormT", bound=forms.Form)


@dataclass(frozen=True)
class Restored(Generic[FormT]):
    """A page's form, rebuilt from a draft when there is one."""

    form: FormT
    notice: str = ""
    notice_level: str = "warning"
    from_draft: bool = False
    secret_shown: bool = False


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    """Return a form's errors as plain messages by field name ("__all__" for the form)."""
    return {name: [str(message) for message in errors] for name, errors in form.errors.items()}


def _session(request: HttpRequest) -> SessionBase:
    return request.session


def draft_save(
    request: HttpRequest,
    name: str,
    data: QueryDict,
    *,
    errors: dict[str, list[str]] | None = None,
    notice: str = "",
    notice_level: str = "warning",
    secret_fields: Iterable[str] = (),
) -> None:
    """Keep the posted values (and the errors and notice to show with them) for the form `name`."""
    secret_fields = set(secret_fields)
    values = {key: data.getlist(key) for key in data if key not in NOT_KEPT and key not in secret_fields}
    if sum(len(v) for vs in values.values() for v in vs) > MAX_DRAFT_CHARS:
        values = {}
    secrets = {key: data.getlist(key) for key in secret_fields if any(data.getlist(key))}
    draft = {
        "values": values,
        "secrets": encrypt_json(secrets) if secrets else "",
        "errors": errors or {},
        "notice": notice,
        "notice_level": notice_level,
    }
    session = _session(request)
    session[DRAFTS_KEY] = {**session.get(DRAFTS_KEY, {}), name: draft}


def draft_discard(request: HttpRequest, name: str) -> None:
    """Forget the draft of the form `name` (it was sent, or the user started over)."""
    session = _session(request)
    drafts = session.get(DRAFTS_KEY, {})
    if name in drafts:
        session[DRAFTS_KEY] = {key: value for key, value in drafts.items() if key != name}


def draft_exists(request: HttpRequest, name: str) -> bool:
    return name in _session(request).get(DRAFTS_KEY, {})


def draft_load(
    request: HttpRequest, name: str, form_class: type[FormT], *, initial: dict | None = None, **kwargs: Any
) -> Restored[FormT]:
    """Return the form for a page: rebuilt from its draft (values and errors), else unbound with `initial`."""
    session = _session(request)
    drafts = session.get(DRAFTS_KEY, {})
    draft = drafts.get(name)
    if draft is None:
        return Restored(form=form_class(initial=initial, **kwargs))
    data = QueryDict(mutable=True)
    for key, values in draft["values"].items():
        data.setlist(key, values)
    secret_shown = False
    if draft["secrets"]:
        for key, values in decrypt_json(draft["secrets"]).items():
            data.setlist(key, values)
        secret_shown = True
    form = form_class(data=data, **kwargs)
    form.full_clean()
    # The saved errors replace a fresh validation: the services' verdicts cannot be recomputed here.
    form._errors = ErrorDict()  # type: ignore[attr-defined]
    for field, messages in draft["errors"].items():
        target = None if field == NON_FIELD_ERRORS or field not in form.fields else field
        form.add_error(target, list(messages))
    # Secrets and the notice are shown once; values and errors stay until the form is sent.
    session[DRAFTS_KEY] = {**drafts, name: {**draft, "secrets": "", "notice": ""}}
    return Restored(
        form=form,
        notice=draft["notice"],
        notice_level=draft["notice_level"],
        from_draft=True,
        secret_shown=secret_shown,
    )


def once_put(request: HttpRequest, name: str, value: dict) -> None:
    """Hand a secret to the next page view, which shows it once (encrypted while it waits)."""
    session = _session(request)
    session[ONCE_KEY] = {**session.get(ONCE_KEY, {}), name: encrypt_json(value)}


def once_pop(request: HttpRequest, name: str) -> dict | None:
    """Take the value `once_put` left for this page, if any; it is gone afterwards."""
    session = _session(request)
    waiting = session.get(ONCE_KEY, {})
    if name not in waiting:
        return None
    session[ONCE_KEY] = {key: value for key, value in waiting.items() if key != name}
    return decrypt_json(waiting[name])
