"""django-q2 entry points: load by pk, check state, call one service."""
