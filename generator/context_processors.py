from __future__ import annotations


def current_team(request) -> dict:
    """Expose the current membership and team to every template."""
    membership = getattr(request, "membership", None)
    if membership is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"membership": None, "team": None}
    return {"membership": membership or None, "team": membership.team if membership else None}
