"""Every /v1/ endpoint, in the document's order: the server routes these rows and the OpenAPI document describes them.

A new endpoint is one row here (and its handler); a new resource adds its rows and its URL names.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model

from generator.api import (
    account_endpoints,
    batch_endpoints,
    document_endpoints,
    engine_endpoints,
    storage_endpoints,
    video_endpoints,
)
from generator.api.registry import ANY_KEY, PUBLIC, Answer, Header, Resource, register
from generator.contract.account import Account
from generator.contract.base import ResponseModel
from generator.contract.batches import Batch, BatchCreate, BatchDetail, BatchItemsQuery, BatchList, BatchListQuery
from generator.contract.engines import Engine, EngineCreate, EngineDeleted, EngineList, EngineUpdate
from generator.contract.errors import RateLimited
from generator.contract.generate import GenerateRequest as GenerateBody
from generator.contract.generate import Generation, GenerationAccepted, GenerationList, GenerationListQuery
from generator.contract.storages import Storage, StorageCreate, StorageDeleted, StorageType, StorageUpdate
from generator.models import ApiKey
from generator.services.idempotency import KEY_MAX_CHARS

VIDEO = ApiKey.Scope.VIDEO_GENERATION.value
STORAGE = ApiKey.Scope.STORAGE.value
ENGINES = ApiKey.Scope.ENGINES.value


def data_of(model: Any, name: str) -> type[BaseModel]:
    """The `{"data": ...}` envelope of a successful answer, as a named model."""
    return create_model(name, __base__=ResponseModel, data=(model, ...))


RATE_HEADERS = (
    Header("RateLimit-Limit", "Limit of the window nearest exhaustion, then `<per_minute>;w=60, <per_second>;w=1`."),
    Header("RateLimit-Remaining", "The smaller remaining count of the two windows; -1 on a 429."),
    Header("RateLimit-Reset", "Whole seconds (rounded up) until that window admits one more."),
)
RETRY_AFTER = Header("Retry-After", "Seconds to wait (>= 1).")
REPLAYED = Header(
    "Idempotent-Replayed",
    "Present (`true`) when this is the stored first answer to the key.",
    {"type": "string", "enum": ["true"]},
)
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Per team. The same key and body within 24 h replays the first accepted answer and charges once; another "
    "body is a 422; a twin still being accepted is a 409. A refused request (422/429/402) keeps the key bound to "
    "its body: the same body with the key is judged again (e.g. after a top-up) and, once accepted, that answer is "
    "the one replayed; a different body with the key is a 422, so send a corrected body with a new key. Malformed "
    "JSON (400) does not use the key.",
    {"type": "string", "minLength": 1, "maxLength": KEY_MAX_CHARS},
)

UNAUTHORIZED = Answer(
    401, "Missing or invalid API key, or its creator is deactivated or left the team (code 111, type auth)."
)
FORBIDDEN = Answer(403, "The API key lacks the scope (code 112, type auth).")
NOT_FOUND = Answer(404, "Unknown object, or another team's (code 1004).")
MALFORMED = Answer(400, "The body is not valid JSON or not a JSON object (code 1000).")
INVALID = Answer(422, "A field broke a rule; error_details names each one (code 9000, type validation).")
KEYED = (UNAUTHORIZED, FORBIDDEN)
MANAGED = (  # managers_only endpoints
    UNAUTHORIZED,
    Answer(
        403,
        "The API key lacks the scope, or the member who created it is no longer an owner or admin (code 112, "
        "type auth).",
    ),
)

GENERATIONS = Resource("video", VIDEO, "The generation's public integer id.")
BATCHES = Resource("batches", VIDEO, "The batch's id.")
ACCOUNT = Resource("account", ANY_KEY)
STORAGES = Resource("storage", STORAGE, "The storage's id.")
ENGINE_CONNECTIONS = Resource("engines", ENGINES, "The connection's id.")
DOCUMENT = Resource("meta", PUBLIC)

GENERATION = data_of(Generation, "GenerationResponse")
STORAGE_ANSWER = data_of(Storage, "StorageResponse")
BATCH = data_of(Batch, "BatchResponse")
ENGINE_ANSWER = data_of(Engine, "EngineResponse")

register(
    GENERATIONS.endpoint(
        "POST",
        "/v1/video/generate",
        video_endpoints.generate,
        operation_id="generateVideo",
        summary="Start making a video from an image",
        description="Checks in order: 401, 403, 400, 422, 429, 402. Credits are held on accept and refunded if the "
        "job ends ERROR or CANCELLED.",
        body=GenerateBody,
        request_headers=(IDEMPOTENCY_KEY,),
        example={
            "input": "https://shop.example/shoe.jpg",
            "options": {"prompt": "slow zoom out, light sweep", "duration": 5, "guidance_scale": 0.5},
        },
        answers=(
            Answer(
                200,
                "Accepted; status is always PROCESSING. A replayed Idempotency-Key answer is the first one, with "
                "`Idempotent-Replayed: true`.",
                data_of(GenerationAccepted, "GenerationAcceptedResponse"),
                (*RATE_HEADERS, REPLAYED),
            ),
            Answer(400, "Malformed JSON.", headers=RATE_HEADERS),
            UNAUTHORIZED,
            Answer(
                402,
                "Not enough credits, or the member's monthly cap is reached (code 3000, type billing).",
                headers=RATE_HEADERS,
            ),
            Answer(403, FORBIDDEN.description, headers=RATE_HEADERS),
            Answer(
                409, "A request with this Idempotency-Key is still being accepted (code 1009).", headers=RATE_HEADERS
            ),
            Answer(
                422,
                "A field broke a rule, or the Idempotency-Key was used with another body (code 9000).",
                headers=RATE_HEADERS,
            ),
            Answer(429, "Rate limit (code 2001), nested under `detail`.", RateLimited, (*RATE_HEADERS, RETRY_AFTER)),
        ),
        on_forbidden=video_endpoints.rate_headers_on_forbidden,
    ),
    GENERATIONS.endpoint(
        "GET",
        "/v1/video/generate",
        video_endpoints.generation_index,
        operation_id="listGenerations",
        summary="List the team's generations, newest first",
        query=GenerationListQuery,
        answers=(
            Answer(200, "One page.", GenerationList),
            *KEYED,
            Answer(422, "A bad status, limit or cursor (code 9000)."),
        ),
    ),
    GENERATIONS.endpoint(
        "GET",
        "/v1/video/generate/{id}",
        video_endpoints.generation_detail,
        operation_id="getGeneration",
        summary="Get one generation (another team's id is a 404)",
        answers=(Answer(200, "The generation.", GENERATION), *KEYED, NOT_FOUND),
    ),
    GENERATIONS.endpoint(
        "POST",
        "/v1/video/generate/{id}/cancel",
        video_endpoints.generation_cancel,
        operation_id="cancelGeneration",
        summary="Cancel a generation that has not started; its credits are refunded",
        answers=(
            Answer(200, "Cancelled (or already cancelled).", GENERATION),
            *KEYED,
            NOT_FOUND,
            Answer(409, "The job has already started or finished (code 1009)."),
        ),
    ),
    BATCHES.endpoint(
        "POST",
        "/v1/video/batches",
        batch_endpoints.batch_add,
        operation_id="createBatch",
        summary="Make one video per image: a list of inputs or a storage folder, the same options",
        description="Answers at once with the id, item count and total cost; nothing is charged yet. Every input is "
        "checked as a single submit's `input` (a bad one is a 422 naming `inputs.<index>`); a folder is listed "
        "(images by extension, at most 10,000). The items are then submitted by the service at the team's rate "
        "limits (never a 429) and charged one by one; short of credits the batch is `waiting_for_credits` and resumes "
        "by itself after a top-up.",
        body=BatchCreate,
        request_headers=(IDEMPOTENCY_KEY,),
        example={
            "input_folder": "storage://photos/spring/",
            "output": "storage://photos/videos/",
            "options": {"prompt": "slow zoom in, light sweep", "duration": 5},
        },
        answers=(
            Answer(
                200,
                "Accepted. A replayed Idempotency-Key answer is the first one, with `Idempotent-Replayed: true`.",
                BATCH,
                (REPLAYED,),
            ),
            MALFORMED,
            *KEYED,
            Answer(409, "A request with this Idempotency-Key is still being accepted (code 1009)."),
            Answer(
                422,
                "A field or input broke a rule (`inputs.<index>`, `input_folder`, `options.*`), or the "
                "Idempotency-Key was used with another body (code 9000).",
            ),
        ),
    ),
    BATCHES.endpoint(
        "GET",
        "/v1/video/batches",
        batch_endpoints.batch_page,
        operation_id="listBatches",
        summary="List the team's batches, newest first",
        query=BatchListQuery,
        answers=(Answer(200, "One page.", BatchList), *KEYED, Answer(422, "A bad limit or cursor (code 9000).")),
    ),
    BATCHES.endpoint(
        "GET",
        "/v1/video/batches/{id}",
        batch_endpoints.batch_detail,
        operation_id="getBatch",
        summary="One batch: counts per status and a page of its items",
        query=BatchItemsQuery,
        answers=(
            Answer(200, "The batch.", data_of(BatchDetail, "BatchDetailResponse")),
            *KEYED,
            NOT_FOUND,
            Answer(422, "A bad status, limit or cursor (code 9000)."),
        ),
    ),
    BATCHES.endpoint(
        "POST",
        "/v1/video/batches/{id}/cancel",
        batch_endpoints.batch_cancel,
        operation_id="cancelBatch",
        summary="Stop a batch: items not submitted yet are never charged, queued ones are refunded",
        description="Items already running finish (or fail and are refunded) as usual.",
        answers=(
            Answer(200, "Cancelled (or already cancelled).", BATCH),
            *KEYED,
            NOT_FOUND,
            Answer(409, "The batch has already finished (code 1009)."),
        ),
    ),
    BATCHES.endpoint(
        "GET",
        "/v1/video/batches/{id}/results.csv",
        batch_endpoints.batch_results,
        operation_id="getBatchResults",
        summary="Every item as CSV: position, input, status, link, error, output_name, generation_id",
        description="Streamed. `link` is the 24 h link of a DONE video.",
        answers=(
            Answer(200, "The CSV.", schema={"type": "string"}, media_type="text/csv"),
            *KEYED,
            NOT_FOUND,
        ),
    ),
    BATCHES.endpoint(
        "GET",
        "/v1/video/batches/{id}/archive.zip",
        batch_endpoints.batch_archive,
        operation_id="getBatchArchive",
        summary="The batch's finished videos as a ZIP (named after their inputs), streamed",
        description="Videos whose 24 h temporary link has expired are left out and named in NOT-INCLUDED.txt.",
        answers=(
            Answer(200, "The ZIP.", schema={"type": "string", "format": "binary"}, media_type="application/zip"),
            *KEYED,
            NOT_FOUND,
        ),
    ),
    ACCOUNT.endpoint(
        "GET",
        "/v1/account",
        account_endpoints.account,
        operation_id="getAccount",
        summary="The team's balance, rate limits and this month's usage",
        answers=(Answer(200, "The account.", data_of(Account, "AccountResponse")), UNAUTHORIZED),
    ),
    STORAGES.endpoint(
        "GET",
        "/v1/storage/storage-types",
        storage_endpoints.storage_types,
        operation_id="listStorageTypes",
        summary="Storage types this server supports",
        answers=(Answer(200, "Types.", data_of(list[StorageType], "StorageTypesResponse")), *KEYED),
    ),
    STORAGES.endpoint(
        "GET",
        "/v1/storage/storages",
        storage_endpoints.storage_index,
        operation_id="listStorages",
        summary="The team's storages",
        answers=(Answer(200, "Storages.", data_of(list[Storage], "StorageListResponse")), *KEYED),
    ),
    STORAGES.endpoint(
        "POST",
        "/v1/storage/storages",
        storage_endpoints.storage_add,
        operation_id="createStorage",
        summary="Connect a storage (the connection is checked first)",
        managers_only=True,
        body=StorageCreate,
        example={"name": "photos", "type": "local", "parameters": {"path": "photos"}},
        answers=(
            Answer(201, "Connected.", STORAGE_ANSWER),
            MALFORMED,
            *MANAGED,
            Answer(422, "A bad field, a taken name, or the connection check failed (code 9000)."),
        ),
    ),
    STORAGES.endpoint(
        "GET",
        "/v1/storage/storages/{id}",
        storage_endpoints.storage_detail,
        operation_id="getStorage",
        summary="One storage",
        answers=(Answer(200, "The storage.", STORAGE_ANSWER), *KEYED, NOT_FOUND),
    ),
    STORAGES.endpoint(
        "PATCH",
        "/v1/storage/storages/{id}",
        storage_endpoints.storage_change,
        operation_id="updateStorage",
        summary="Rename a storage or change its parameters",
        managers_only=True,
        body=StorageUpdate,
        answers=(Answer(200, "Updated.", STORAGE_ANSWER), MALFORMED, *MANAGED, NOT_FOUND, INVALID),
    ),
    STORAGES.endpoint(
        "DELETE",
        "/v1/storage/storages/{id}",
        storage_endpoints.storage_remove,
        operation_id="deleteStorage",
        summary="Disconnect a storage (its bucket contents are kept)",
        managers_only=True,
        answers=(Answer(200, "Disconnected.", data_of(StorageDeleted, "StorageDeletedResponse")), *MANAGED, NOT_FOUND),
    ),
    ENGINE_CONNECTIONS.endpoint(
        "GET",
        "/v1/engines",
        engine_endpoints.engine_index,
        operation_id="listEngines",
        summary="The engines the team can run on: builtin, then its connections",
        answers=(Answer(200, "All of them.", EngineList), *KEYED),
    ),
    ENGINE_CONNECTIONS.endpoint(
        "POST",
        "/v1/engines",
        engine_endpoints.engine_add,
        operation_id="createEngine",
        summary="Connect an upstream engine with the team's key (one cheap authenticated call first)",
        managers_only=True,
        body=EngineCreate,
        example={"name": "claid", "type": "claid", "credentials": {"api_key": "..."}},
        answers=(
            Answer(201, "Connected.", ENGINE_ANSWER),
            MALFORMED,
            *MANAGED,
            Answer(422, "A bad field, a taken name, or the upstream refused the key (code 9000)."),
        ),
    ),
    ENGINE_CONNECTIONS.endpoint(
        "GET",
        "/v1/engines/{id}",
        engine_endpoints.engine_detail,
        operation_id="getEngine",
        summary="One engine connection",
        answers=(Answer(200, "The connection.", ENGINE_ANSWER), *KEYED, NOT_FOUND),
    ),
    ENGINE_CONNECTIONS.endpoint(
        "PATCH",
        "/v1/engines/{id}",
        engine_endpoints.engine_change,
        operation_id="updateEngine",
        summary="Rename a connection, replace its key or parameters (tested again), or set the team's default",
        managers_only=True,
        body=EngineUpdate,
        example={"is_default": True},
        answers=(Answer(200, "Updated.", ENGINE_ANSWER), MALFORMED, *MANAGED, NOT_FOUND, INVALID),
    ),
    ENGINE_CONNECTIONS.endpoint(
        "DELETE",
        "/v1/engines/{id}",
        engine_endpoints.engine_remove,
        operation_id="deleteEngine",
        summary="Disconnect an engine (the team's default falls back to builtin)",
        managers_only=True,
        answers=(Answer(200, "Disconnected.", data_of(EngineDeleted, "EngineDeletedResponse")), *MANAGED, NOT_FOUND),
    ),
    DOCUMENT.endpoint(
        "GET",
        "/v1/openapi.json",
        document_endpoints.openapi,
        operation_id="getOpenApi",
        summary="This document (no key needed)",
        answers=(Answer(200, "The OpenAPI document.", schema={"type": "object"}),),
    ),
)

# The URL name of each path (reverse("api:<name>")).
URL_NAMES = {
    "/v1/video/generate": "generate",
    "/v1/video/generate/{id}": "generation-detail",
    "/v1/video/generate/{id}/cancel": "generation-cancel",
    "/v1/video/batches": "batches",
    "/v1/video/batches/{id}": "batch-detail",
    "/v1/video/batches/{id}/cancel": "batch-cancel",
    "/v1/video/batches/{id}/results.csv": "batch-results",
    "/v1/video/batches/{id}/archive.zip": "batch-archive",
    "/v1/account": "account",
    "/v1/storage/storage-types": "storage-types",
    "/v1/storage/storages": "storages",
    "/v1/storage/storages/{id}": "storage-detail",
    "/v1/engines": "engines",
    "/v1/engines/{id}": "engine-detail",
    "/v1/openapi.json": "openapi",
}
