"""POST /hooks/upstream/<token>/: an upstream engine says a job changed (no login, no CSRF; docs/engines.md)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generator.errors import GeneratorError
from generator.services.upstream_webhooks import WEBHOOK_MAX_BYTES, WebhookTooLarge, upstream_webhook_receive


def _body(request: HttpRequest) -> bytes:
    """Read at most WEBHOOK_MAX_BYTES of the body, refusing a longer one before reading it whole."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > WEBHOOK_MAX_BYTES:
        raise WebhookTooLarge(f"the webhook body is larger than {WEBHOOK_MAX_BYTES} bytes")
    return request.read(WEBHOOK_MAX_BYTES + 1)


@csrf_exempt  # the upstream has no session; the signed token and the provider's signature are the checks
@require_POST
def upstream_webhook(request: HttpRequest, token: str) -> JsonResponse:
    """Verify the call and book an immediate look at its job; 2xx also when the job is no longer waiting."""
    try:
        booked = upstream_webhook_receive(token=token, headers=request.headers, body=_body(request))
    except GeneratorError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse({"looking": booked}, status=202 if booked else 200)
