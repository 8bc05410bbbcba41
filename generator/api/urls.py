from django.urls import re_path

from generator.api import document_endpoints
from generator.api.endpoints import URL_NAMES
from generator.api.registry import registered, url_patterns

app_name = "api"

urlpatterns = [
    *url_patterns(registered(), URL_NAMES),
    # Last: any other /v1/ path (newlines included) answers 404 with the envelope instead of an HTML page.
    re_path(r"^(?P<path>[\s\S]*)$", document_endpoints.not_found, name="not-found"),
]
