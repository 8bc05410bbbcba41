"""Accounts: the throttled login and opening an invite link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from generator.errors import Conflict, Forbidden, ValidationFailed
from generator.forms import InviteAcceptForm
from generator.middleware import SESSION_TEAM_KEY
from generator.services import teams


class LoginView(auth_views.LoginView):
    """Django's login view; a signed-in user goes straight on. Lockouts: generator/lockout.py."""

    redirect_authenticated_user = True


LOGGED_OUT = "You are logged out. Log in again to carry on."


class LogoutView(auth_views.LogoutView):
    """Django's logout view; the login page it leads to says the user is logged out (once)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.info(request, LOGGED_OUT)
        return response


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
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            membership = teams.invite_accept(
                invite=invite,
                password=None if form is None else form.cleaned_data["password1"],
                name="" if form is None else form.cleaned_data["name"],
                user=request.user if signed_in else None,
            )
        except ValidationFailed as exc:
            for message in exc.details.get("password", [exc.message]):
                if form is not None:
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
