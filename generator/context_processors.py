from __future__ import annotations

from django.urls import reverse

# The dashboard's main navigation, in order: (key matched against the view's "active", label, URL name).
# A new page adds one line here (docs/dashboard.md); the menu collapses on narrow screens by itself.
NAV_ITEMS = (
    ("generate", "Generate", "generator:home"),
    ("jobs", "Jobs", "generator:jobs"),
    ("batches", "Batches", "generator:batches"),
    ("gallery", "Gallery", "generator:gallery"),
    ("storages", "Storages", "generator:storages"),
    ("engines", "Engines", "generator:engines"),
    ("credits", "Credits", "generator:credits"),
    ("keys", "API keys", "generator:keys"),
    ("team", "Team", "generator:team"),
)


def current_team(request) -> dict:
    """Expose the current membership and team, and the main navigation, to every template."""
    membership = getattr(request, "membership", None)
    if membership is None or not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"membership": None, "team": None, "nav_items": ()}
    return {
        "membership": membership or None,
        "team": membership.team if membership else None,
        "nav_items": [{"key": key, "label": label, "url": reverse(name)} for key, label, name in NAV_ITEMS],
    }
