"""Attach the current team of a logged-in user to the request."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from generator import selectors

SESSION_TEAM_KEY = "generator_team_id"


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
