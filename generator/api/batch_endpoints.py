"""The /v1/video/batches handlers: accept, list, get (with items), cancel, results.csv and archive.zip."""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from generator import selectors
from generator.api.idempotent import idempotent_post
from generator.api.registry import ApiRequest, read_query
from generator.contract.batches import BatchItemsQuery, BatchListQuery, position_after, position_cursor
from generator.models import PUBLIC_ID_MAX, Batch
from generator.presenters import batch_item_to_api, batch_to_api
from generator.services.batch_exports import archive_filename, batch_archive_chunks, batch_csv_chunks, csv_filename
from generator.services.batches import PreparedBatch, batch_prepare, batch_write
from generator.services.batches import batch_cancel as cancel_service


def _base(request: ApiRequest) -> str:
    return request.build_absolute_uri("/")


def batch_add(request: ApiRequest) -> HttpResponse:
    """POST /v1/video/batches: accept a batch at once (id, item count, total cost); items go out at the team's rate."""

    def prepare(body: dict) -> PreparedBatch:
        return batch_prepare(team=request.team, body=body, api_key=request.api_key)

    def accept(prepared: PreparedBatch):
        batch = batch_write(prepared)
        return {"data": batch_to_api(batch, base_url=_base(request))}, None, batch

    response, _ = idempotent_post(request, accept, prepare=prepare)
    return response


def batch_page(request: ApiRequest) -> HttpResponse:
    """GET /v1/video/batches: the team's batches, newest first."""
    query: BatchListQuery = read_query(request)
    qs = selectors.batch_list(team=request.team)
    after = position_after(query.cursor)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    page = list(qs[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    counts = selectors.batch_counts(batch.pk for batch in page)
    base = _base(request)
    return JsonResponse(
        {
            "data": [batch_to_api(batch, counts=counts[batch.pk], base_url=base) for batch in page],
            "next_cursor": position_cursor(page[-1].pk) if more else None,
        }
    )


def _own_batch(request: ApiRequest, pk: int) -> Batch:
    batch = selectors.batch_get(team=request.team, pk=pk) if 0 <= pk <= PUBLIC_ID_MAX else None
    if batch is None:
        raise Http404
    return batch


def batch_detail(request: ApiRequest, pk: int) -> HttpResponse:
    """GET /v1/video/batches/{id}: counts per status and one page of items in input order."""
    batch = _own_batch(request, pk)
    query: BatchItemsQuery = read_query(request)
    items = list(
        selectors.batch_items(batch=batch, status=query.status, after=position_after(query.cursor))[: query.limit + 1]
    )
    more = len(items) > query.limit
    items = items[: query.limit]
    data = batch_to_api(batch, base_url=_base(request))
    data["items"] = [batch_item_to_api(item) for item in items]
    data["next_cursor"] = position_cursor(items[-1].position) if more else None
    return JsonResponse({"data": data})


def batch_cancel(request: ApiRequest, pk: int) -> HttpResponse:
    """POST /v1/video/batches/{id}/cancel: stop the rest; pending items are never charged, queued ones refunded."""
    batch = cancel_service(team=request.team, batch=_own_batch(request, pk))
    return JsonResponse({"data": batch_to_api(batch, base_url=_base(request))})


def batch_results(request: ApiRequest, pk: int) -> HttpResponseBase:
    """GET /v1/video/batches/{id}/results.csv: input, status, link and error of every item, streamed."""
    batch = _own_batch(request, pk)
    response = StreamingHttpResponse(batch_csv_chunks(batch), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{csv_filename(batch)}"'
    return response


def batch_archive(request: ApiRequest, pk: int) -> HttpResponseBase:
    """GET /v1/video/batches/{id}/archive.zip: the finished videos, streamed (never built in memory)."""
    batch = _own_batch(request, pk)
    response = StreamingHttpResponse(batch_archive_chunks(batch), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{archive_filename(batch)}"'
    return response
