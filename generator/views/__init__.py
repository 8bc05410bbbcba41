"""The dashboard: one module per page area; each URL serves a page and its htmx fragments."""
