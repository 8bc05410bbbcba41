"""The OpenAPI 3.1 document of /v1/, built in code so it follows the constants the server checks."""

from __future__ import annotations

from copy import deepcopy

from generator.schemas import (
    DURATIONS,
    GUIDELINES_MAX_CHARS,
    GUIDELINES_MIN_CHARS,
    INPUT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    PROMPT_MIN_CHARS,
)

MAX_ID = 2**63 - 1
IDEMPOTENCY_KEY_MAX_CHARS = 255
STATUSES = ["PROCESSING", "DONE", "ERROR", "CANCELLED"]
STORAGE_TYPES = ["s3", "gcs", "local"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, *, headers: dict | None = None) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _data(schema: dict) -> dict:
    return {"type": "object", "required": ["data"], "properties": {"data": schema}, "additionalProperties": False}


def _error(description: str, *, headers: dict | None = None) -> dict:
    return _json(_ref("Error"), description, headers=headers)


RATE_HEADERS = {
    "RateLimit-Limit": {
        "description": "Limit of the window nearest exhaustion, then `<per_minute>;w=60, <per_second>;w=1`.",
        "schema": {"type": "string"},
    },
    "RateLimit-Remaining": {
        "description": "The smaller remaining count of the two windows; -1 on a 429.",
        "schema": {"type": "string"},
    },
    "RateLimit-Reset": {
        "description": "Whole seconds (rounded up) until that window admits one more.",
        "schema": {"type": "string"},
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait (>= 1).", "schema": {"type": "string"}}}

UNAUTHORIZED = _error("Missing or invalid API key (code 111, type auth).")
FORBIDDEN = _error("The API key lacks the scope (code 112, type auth).")
NOT_FOUND = _error("Unknown object, or another team's (code 1004).")
MALFORMED = _error("The body is not valid JSON or not a JSON object (code 1000).")
INVALID = _error("A field broke a rule; error_details names each one (code 9000, type validation).")

ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The generation's public integer id.",
    "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_ID},
}
STORAGE_ID_PARAMETER = {**ID_PARAMETER, "description": "The storage's id."}

TEXT_PROMPT = {"type": "string", "minLength": PROMPT_MIN_CHARS, "maxLength": PROMPT_MAX_CHARS}

SCHEMAS: dict = {
    "Error": {
        "type": "object",
        "description": "Every non-2xx answer except 429, which nests this object under `detail`.",
        "required": ["error_code", "error_type", "error_message", "error_details"],
        "properties": {
            "error_code": {
                "type": "string",
                "enum": ["1000", "111", "112", "3000", "1004", "1005", "1009", "9000", "2001"],
            },
            "error_type": {"type": "string", "enum": ["general", "auth", "billing", "validation"]},
            "error_message": {"type": "string"},
            "error_details": {
                "type": "object",
                "description": "Messages keyed by dotted field name (`options.duration`); `{}` when no field is at fault.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
        "additionalProperties": False,
    },
    "RateLimited": {
        "type": "object",
        "description": "429: the error object nested under `detail`, as the reference API does (code 2001).",
        "required": ["detail"],
        "properties": {"detail": _ref("Error")},
        "additionalProperties": False,
    },
    "PromptText": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": TEXT_PROMPT},
        "additionalProperties": False,
    },
    "PromptAuto": {
        "type": "object",
        "description": "Let the engine analyse the image and choose; `guidelines` steer it.",
        "required": ["generate"],
        "properties": {
            "generate": {"type": "boolean", "const": True},
            "guidelines": {"type": "string", "minLength": GUIDELINES_MIN_CHARS, "maxLength": GUIDELINES_MAX_CHARS},
        },
        "additionalProperties": False,
    },
    "GenerateOptions": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"oneOf": [TEXT_PROMPT, _ref("PromptText"), _ref("PromptAuto")]},
            "negative_prompt": {"type": "string", "minLength": PROMPT_MIN_CHARS, "maxLength": PROMPT_MAX_CHARS},
            "duration": {
                "description": "Seconds; 5 or 10, as a number or a string. Default 5.",
                "oneOf": [
                    {"type": "integer", "enum": list(DURATIONS)},
                    {"type": "string", "enum": [str(d) for d in DURATIONS]},
                ],
            },
            "guidance_scale": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
        },
        "additionalProperties": False,
    },
    "GenerateRequest": {
        "type": "object",
        "required": ["input", "options"],
        "properties": {
            "input": {
                "type": "string",
                "minLength": 1,
                "maxLength": INPUT_MAX_CHARS,
                "description": "An http(s) URL of the image, or storage://<name>/<path> of one of the team's storages.",
            },
            "output": {
                "type": "string",
                "description": "storage://<name>/<dir>/ (a unique file name is made) or storage://<name>/<path>.mp4. "
                "Absent: the temporary store (24 h link).",
            },
            "options": _ref("GenerateOptions"),
        },
        "additionalProperties": False,
    },
    "RequestEcho": {
        "type": "object",
        "description": "The normalised request: defaults filled in, duration an integer, output only when given.",
        "required": ["input", "options"],
        "properties": {
            "input": {"type": "string"},
            "output": {"type": "string"},
            "options": {
                "type": "object",
                "required": ["prompt", "duration", "guidance_scale"],
                "properties": {
                    "prompt": {"oneOf": [{"type": "string"}, _ref("PromptText"), _ref("PromptAuto")]},
                    "negative_prompt": {"type": "string"},
                    "duration": {"type": "integer", "enum": list(DURATIONS)},
                    "guidance_scale": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "ISO 8601 in UTC with microseconds and +00:00.",
        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$",
    },
    "GenerationAccepted": {
        "type": "object",
        "required": ["id", "status", "result_url", "created_at", "request"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["PROCESSING"]},
            "result_url": {"type": "string", "format": "uri"},
            "created_at": _ref("Timestamp"),
            "request": _ref("RequestEcho"),
        },
        "additionalProperties": False,
    },
    "InputObject": {
        "type": "object",
        "properties": {
            "ext": {"type": "string"},
            "mps": {"type": "number", "description": "Megapixels of the source image."},
            "mime": {"type": "string"},
            "format": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "generated_prompt": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "OutputObject": {
        "type": "object",
        "required": ["ext", "mime", "format"],
        "properties": {
            "ext": {"type": "string", "enum": ["mp4"]},
            "mime": {"type": "string", "enum": ["video/mp4"]},
            "format": {"type": "string", "enum": ["mp4"]},
            "tmp_url": {"type": "string", "format": "uri", "description": "Signed link, valid 24 h."},
            "object_key": {"type": "string"},
            "object_bucket": {"type": "string"},
            "object_uri": {"type": "string"},
            "claid_storage_uri": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "Generation": {
        "type": "object",
        "required": ["id", "status", "created_at", "request", "errors", "result"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": STATUSES},
            "created_at": _ref("Timestamp"),
            "request": _ref("RequestEcho"),
            "errors": {
                "type": "array",
                "description": "Empty unless status is ERROR.",
                "items": {
                    "type": "object",
                    "required": ["error", "created_at"],
                    "properties": {"error": {"type": "string"}, "created_at": _ref("Timestamp")},
                    "additionalProperties": False,
                },
            },
            "result": {
                "type": "object",
                "description": "`{}` unless status is DONE.",
                "properties": {"input_object": _ref("InputObject"), "output_object": _ref("OutputObject")},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "GenerationList": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": _ref("Generation")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null at the end.",
            },
        },
        "additionalProperties": False,
    },
    "Account": {
        "type": "object",
        "required": ["team", "balance", "rate_limits", "usage_this_month"],
        "properties": {
            "team": {"type": "string"},
            "balance": {"type": "integer", "minimum": 0},
            "rate_limits": {
                "type": "object",
                "required": ["per_second", "per_minute"],
                "properties": {
                    "per_second": {"type": "integer", "minimum": 1},
                    "per_minute": {"type": "integer", "minimum": 1},
                },
                "additionalProperties": False,
            },
            "usage_this_month": {
                "type": "object",
                "required": ["credits", "generations"],
                "properties": {
                    "credits": {"type": "integer", "description": "Held minus refunded since `since`."},
                    "generations": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Jobs charged since `since` and not refunded (ERROR and CANCELLED are not counted).",
                    },
                    "since": _ref("Timestamp"),
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    "StorageParameters": {
        "type": "object",
        "description": "Per type. local: {path}. s3: {bucket, path, region, endpoint_url, credentials: "
        "{access_key, secret_access_key}}. gcs: {bucket, path, endpoint_url, credentials: {access_key, "
        "secret_access_key} or {service_account: {...}}}. Credentials are write-only.",
        "properties": {
            "path": {"type": "string"},
            "bucket": {"type": "string"},
            "region": {"type": "string"},
            "endpoint_url": {"type": "string"},
            "credentials": {"type": "object"},
        },
    },
    "StorageCreate": {
        "type": "object",
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$"},
            "type": {"type": "string", "enum": STORAGE_TYPES},
            "parameters": _ref("StorageParameters"),
        },
        "additionalProperties": False,
    },
    "StorageUpdate": {
        "type": "object",
        "description": "Rename and/or change parameters; the connection is checked again. `type` cannot change.",
        "properties": {
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$"},
            "type": {"type": "string", "enum": STORAGE_TYPES},
            "parameters": _ref("StorageParameters"),
        },
        "additionalProperties": False,
    },
    "Storage": {
        "type": "object",
        "required": ["id", "name", "type", "parameters", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": STORAGE_TYPES},
            "parameters": {
                "type": "object",
                "description": "Never credentials.",
                "not": {"required": ["credentials"]},
            },
            "created_at": _ref("Timestamp"),
        },
        "additionalProperties": False,
    },
}

SECURED_ERRORS = {"401": UNAUTHORIZED, "403": FORBIDDEN}


def _paths() -> dict:
    generate_post_errors = {
        "400": _error("Malformed JSON.", headers=RATE_HEADERS),
        "401": UNAUTHORIZED,
        "402": _error(
            "Not enough credits, or the member's monthly cap is reached (code 3000, type billing).",
            headers=RATE_HEADERS,
        ),
        "403": _error("The API key lacks the scope (code 112, type auth).", headers=RATE_HEADERS),
        "409": _error("A request with this Idempotency-Key is still being accepted (code 1009).", headers=RATE_HEADERS),
        "422": _error(
            "A field broke a rule, or the Idempotency-Key was used with another body (code 9000).", headers=RATE_HEADERS
        ),
        "429": _json(
            _ref("RateLimited"),
            "Rate limit (code 2001), nested under `detail`.",
            headers={**RATE_HEADERS, **RETRY_AFTER},
        ),
    }
    return {
        "/v1/video/generate": {
            "post": {
                "operationId": "generateVideo",
                "summary": "Start making a video from an image",
                "description": "Checks in order: 401, 403, 400, 422, 429, 402. Credits are held on accept and "
                "refunded if the job ends ERROR or CANCELLED.",
                "tags": ["video"],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Per team. The same key and body within 24 h replays the first accepted answer "
                        "and charges once; another body is a 422; a twin still being accepted is a 409. A refused "
                        "request (422/429/402) keeps the key bound to its body: the same body with the key is judged "
                        "again (e.g. after a top-up) and, once accepted, that answer is the one replayed; a different "
                        "body with the key is a 422, so send a corrected body with a new key. Malformed JSON (400) "
                        "does not use the key.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_CHARS},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("GenerateRequest"),
                            "example": {
                                "input": "https://shop.example/shoe.jpg",
                                "options": {
                                    "prompt": "slow zoom out, light sweep",
                                    "duration": 5,
                                    "guidance_scale": 0.5,
                                },
                            },
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _data(_ref("GenerationAccepted")),
                        "Accepted; status is always PROCESSING. A replayed Idempotency-Key answer is the first one, "
                        "with `Idempotent-Replayed: true`.",
                        headers={
                            **RATE_HEADERS,
                            "Idempotent-Replayed": {
                                "description": "Present (`true`) when this is the stored first answer to the key.",
                                "schema": {"type": "string", "enum": ["true"]},
                            },
                        },
                    ),
                    **generate_post_errors,
                },
            },
            "get": {
                "operationId": "listGenerations",
                "summary": "List the team's generations, newest first",
                "tags": ["video"],
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": STATUSES},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The `next_cursor` of the previous page.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(_ref("GenerationList"), "One page."),
                    **SECURED_ERRORS,
                    "422": _error("A bad status, limit or cursor (code 9000)."),
                },
            },
        },
        "/v1/video/generate/{id}": {
            "get": {
                "operationId": "getGeneration",
                "summary": "Get one generation (another team's id is a 404)",
                "tags": ["video"],
                "parameters": [ID_PARAMETER],
                "responses": {
                    "200": _json(_data(_ref("Generation")), "The generation."),
                    **SECURED_ERRORS,
                    "404": NOT_FOUND,
                },
            }
        },
        "/v1/video/generate/{id}/cancel": {
            "post": {
                "operationId": "cancelGeneration",
                "summary": "Cancel a generation that has not started; its credits are refunded",
                "tags": ["video"],
                "parameters": [ID_PARAMETER],
                "responses": {
                    "200": _json(_data(_ref("Generation")), "Cancelled (or already cancelled)."),
                    **SECURED_ERRORS,
                    "404": NOT_FOUND,
                    "409": _error("The job has already started or finished (code 1009)."),
                },
            }
        },
        "/v1/account": {
            "get": {
                "operationId": "getAccount",
                "summary": "The team's balance, rate limits and this month's usage",
                "tags": ["account"],
                "responses": {"200": _json(_data(_ref("Account")), "The account."), "401": UNAUTHORIZED},
            }
        },
        "/v1/storage/storage-types": {
            "get": {
                "operationId": "listStorageTypes",
                "summary": "Storage types this server supports",
                "tags": ["storage"],
                "responses": {
                    "200": _json(
                        _data({"type": "array", "items": {"type": "string", "enum": STORAGE_TYPES}}), "Types."
                    ),
                    **SECURED_ERRORS,
                },
            }
        },
        "/v1/storage/storages": {
            "get": {
                "operationId": "listStorages",
                "summary": "The team's storages",
                "tags": ["storage"],
                "responses": {
                    "200": _json(_data({"type": "array", "items": _ref("Storage")}), "Storages."),
                    **SECURED_ERRORS,
                },
            },
            "post": {
                "operationId": "createStorage",
                "summary": "Connect a storage (the connection is checked first)",
                "tags": ["storage"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("StorageCreate"),
                            "example": {"name": "photos", "type": "local", "parameters": {"path": "photos"}},
                        }
                    },
                },
                "responses": {
                    "201": _json(_data(_ref("Storage")), "Connected."),
                    "400": MALFORMED,
                    **SECURED_ERRORS,
                    "422": _error("A bad field, a taken name, or the connection check failed (code 9000)."),
                },
            },
        },
        "/v1/storage/storages/{id}": {
            "get": {
                "operationId": "getStorage",
                "summary": "One storage",
                "tags": ["storage"],
                "parameters": [STORAGE_ID_PARAMETER],
                "responses": {"200": _json(_data(_ref("Storage")), "The storage."), **SECURED_ERRORS, "404": NOT_FOUND},
            },
            "patch": {
                "operationId": "updateStorage",
                "summary": "Rename a storage or change its parameters",
                "tags": ["storage"],
                "parameters": [STORAGE_ID_PARAMETER],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("StorageUpdate")}}},
                "responses": {
                    "200": _json(_data(_ref("Storage")), "Updated."),
                    "400": MALFORMED,
                    **SECURED_ERRORS,
                    "404": NOT_FOUND,
                    "422": INVALID,
                },
            },
            "delete": {
                "operationId": "deleteStorage",
                "summary": "Disconnect a storage (its bucket contents are kept)",
                "tags": ["storage"],
                "parameters": [STORAGE_ID_PARAMETER],
                "responses": {
                    "200": _json(
                        _data(
                            {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "integer"}},
                                "additionalProperties": False,
                            }
                        ),
                        "Disconnected.",
                    ),
                    **SECURED_ERRORS,
                    "404": NOT_FOUND,
                },
            },
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document (no key needed)",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
    }


def openapi_document(*, server_url: str = "") -> dict:
    """Return the OpenAPI document; `server_url` is the base the client reached us on."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Image-to-Video API",
            "version": "1.0.0",
            "description": "Wire-compatible with Claid.ai's Image-to-Video API, plus listing, cancel, "
            "idempotency, account and storages. Authenticate with `Authorization: Bearer <key>`. "
            "Every error has the envelope of the Error schema (429 nests it under `detail`); "
            "a wrong method is a 405 (code 1005), an unknown /v1/ path a 404 (code 1004).",
        },
        "servers": [{"url": server_url or "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": "video"}, {"name": "account"}, {"name": "storage"}, {"name": "meta"}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key of the team."}
            },
            "schemas": deepcopy(SCHEMAS),
        },
    }
