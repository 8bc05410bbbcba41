"""Attach the current team of a logged-in user to the request."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from django_htmx.middleware import HtmxDetails

from generator import selectors
from generator.models import Membership, Team, User

SESSION_TEAM_KEY = "generator_team_id"


class TeamRequest(HttpRequest):
    """A dashboard request as the middleware leaves it: the signed-in user, their membership and team.

    Views behind team_required may rely on `membership` and `team` being set; django-htmx adds `htmx`.
    """

    user: User
    membership: Membership
    team: Team
    htmx: HtmxDetails


def _membership(request):
    if not request.user.is_authenticated:
        return None
    return selectors.membership_current(user=request.user, team_id=request.session.get(SESSION_TEAM_KEY))


class CurrentTeamMiddleware:
    """Set request.membership (or None) and request.team lazily, scoped to the session's chosen team."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: _membership(request))
        request.team = SimpleLazyObject(lambda: request.membership.team if request.membership else None)
        return self.get_response(request)
