"""Error reports (the DEBUG page, error mails) that never show a password held in a URL.

Django hides settings whose names look secret (KEY, SECRET, PASS, TOKEN, ...). Connection strings
are named *_URL or *_DSN and carry their password inside the value (postgres://user:pass@host,
redis://:pass@host), and the same value is copied into CACHES["default"]["LOCATION"],
Q_CLUSTER["redis"] and, under some servers, request.META (the process environment). So this filter
hides every *_URL / *_DSN setting and, wherever it appears (nested settings, request.META, frame
variables), any string that holds a URL with user information.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

_CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@]*@", re.IGNORECASE)


class SecretHidingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus connection-string names and any URL that carries credentials."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + r"|_URL$|_DSN$", flags=re.IGNORECASE
    )

    def cleanse_setting(self, key, value):
        if _holds_credentials(value):
            return self.cleansed_substitute
        return super().cleanse_setting(key, value)

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self.cleansed_substitute if _holds_credentials(value) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


def _holds_credentials(value) -> bool:
    # str() also unwraps lazy strings (settings may hold SimpleLazyObject values).
    return isinstance(value, str) and bool(_CREDENTIAL_URL.search(str(value)))
