"""The storages API: the bodies that connect or change a storage, per type, and the storage it answers with.

Checks that need more than the body stay in services/storage_connections.py: a name already used
in the team, the type of a stored storage, and the live connection check.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SkipValidation, ValidationInfo, field_validator

from generator import models
from generator.contract.base import Details, RequestModel, ResponseModel, refuse, validation_failed
from generator.contract.generate import Timestamp
from generator.errors import ValidationFailed
from generator.netpolicy import UrlRejected
from generator.storage.endpoints import check_endpoint_syntax
from generator.storage.registry import supported_types
from generator.storage.uris import NAME_RE, KeyRejected, validate_prefix

STORAGE_TYPES: tuple[str, ...] = tuple(models.Storage.Type.values)
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
SERVICE_ACCOUNT_KEYS = frozenset(
    {
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    }
)
MAX_SECRET_CHARS = 10_000
SECRET_MAX_CHARS = 1000
CREDENTIALS_REQUIRED = "is required"
StorageType = Literal[STORAGE_TYPES]  # type: ignore[valid-type]


# --- rules of single fields -------------------------------------------------------------------


def _name_rule(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise refuse("must be 1..50 characters: letters, digits, '_' or '-', starting with a letter or digit")
    return value


def _type_rule(value: Any) -> str:
    if value not in supported_types():
        raise refuse(f"must be one of: {', '.join(supported_types())}")
    return value


def _path_rule(value: Any) -> str:
    try:
        return validate_prefix(value or "")
    except KeyRejected as exc:
        raise refuse(str(exc)) from None


def _bucket_rule(value: Any) -> str:
    if not isinstance(value, str) or not BUCKET_RE.match(value) or ".." in value:
        raise refuse("is required: 3..222 characters, lowercase letters, digits, '.', '_' or '-'")
    return value


def _region_rule(value: Any) -> str:
    if not isinstance(value, str) or not REGION_RE.match(value):
        raise refuse("must look like us-east-1")
    return value


def _endpoint_rule(value: Any) -> str:
    try:
        return check_endpoint_syntax(value)
    except UrlRejected as exc:
        raise refuse(str(exc)) from None


def _secret_rule(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > SECRET_MAX_CHARS or not value.isprintable():
        raise refuse("is required (a non-empty string)")
    return value


def _service_account_rule(info: Any) -> dict:
    if not isinstance(info, dict):
        raise refuse("must be the service-account key file (a JSON object)")
    problems = []
    unknown = sorted(set(info) - SERVICE_ACCOUNT_KEYS)
    if unknown:
        problems.append(f"unknown keys: {', '.join(unknown)}")
    if info.get("type") != "service_account":
        problems.append('only key files with "type": "service_account" are accepted')
    if info.get("token_uri") != GOOGLE_TOKEN_URI:
        problems.append(f'token_uri must be "{GOOGLE_TOKEN_URI}"')
    if info.get("universe_domain", "googleapis.com") != "googleapis.com":
        problems.append('universe_domain must be "googleapis.com"')
    problems += [
        f"{key} is missing"
        for key in ("client_email", "private_key")
        if not isinstance(info.get(key), str) or not info.get(key)
    ]
    if any(not isinstance(value, str) for value in info.values()):
        problems.append("every value must be a string")
    if not problems:
        # Optional dependency: only a build with google-cloud-storage offers the gcs type.
        from google.oauth2 import service_account

        try:
            service_account.Credentials.from_service_account_info(info)
        except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm, ...
            # The library's message may quote the key material: never echo it.
            problems.append("the private key cannot be read")
    if problems:
        raise refuse(problems[0], details={"": problems})
    return info


def _object_rule(value: Any) -> dict:
    if not isinstance(value, dict):
        raise refuse("must be an object")
    return value


Secret = Annotated[
    str,
    Field(min_length=1, max_length=SECRET_MAX_CHARS, json_schema_extra={"writeOnly": True}),
    BeforeValidator(_secret_rule),
]
StorageName = Annotated[
    str,
    Field(pattern=NAME_RE.pattern, description="Unique in the team; used in storage://<name>/<path>."),
    BeforeValidator(_name_rule),
]
Prefix = Annotated[
    str,
    Field(description="A folder inside the bucket (or the team's local root); '/' at either end is dropped."),
    BeforeValidator(_path_rule),
]
Bucket = Annotated[str, Field(pattern=BUCKET_RE.pattern), BeforeValidator(_bucket_rule)]
EndpointUrl = Annotated[
    str,
    Field(description="For S3-compatible servers and emulators; it passes the server's address policy."),
    BeforeValidator(_endpoint_rule),
]


# --- credentials and parameters per type ----------------------------------------------------------


class KeyCredentials(RequestModel):
    """An access key and its secret (S3, or GCS HMAC keys). Write-only: never returned."""

    UNKNOWN_KEY_MESSAGE = None

    access_key: Secret
    secret_access_key: Secret

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        faults: Details = {}
        if len(str(data)) > MAX_SECRET_CHARS:
            faults[""] = ["is too large"]
        # A missing key gets the same words as an empty one.
        return {"access_key": None, "secret_access_key": None, **data}, faults


class ServiceAccountCredentials(RequestModel):
    """A Google service-account key file (GCS). Write-only: never returned."""

    service_account: Annotated[dict[str, str], BeforeValidator(_service_account_rule)]


class LocalParameters(RequestModel):
    """A folder under the team's own local storage root."""

    UNKNOWN_KEY_MESSAGE = "unknown parameter for type local"

    path: Prefix = ""


class S3Parameters(RequestModel):
    """An S3 bucket (or an S3-compatible server's)."""

    UNKNOWN_KEY_MESSAGE = "unknown parameter for type s3"
    NULL_MEANS_ABSENT = ("region", "endpoint_url")

    path: Prefix = ""
    bucket: Bucket
    region: Annotated[str, Field(pattern=REGION_RE.pattern), BeforeValidator(_region_rule)] = None  # type: ignore[assignment]
    endpoint_url: EndpointUrl = None  # type: ignore[assignment]
    credentials: Annotated[
        KeyCredentials, Field(description="Required when connecting; kept when omitted on PATCH.")
    ] = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        # A missing bucket gets the same words as a bad one.
        return {"bucket": None, **data}, {}


class GcsParameters(RequestModel):
    """A Google Cloud Storage bucket, with HMAC keys or a service-account key file."""

    UNKNOWN_KEY_MESSAGE = "unknown parameter for type gcs"
    NULL_MEANS_ABSENT = ("endpoint_url",)

    path: Prefix = ""
    bucket: Bucket
    endpoint_url: EndpointUrl = None  # type: ignore[assignment]
    credentials: Annotated[
        KeyCredentials | ServiceAccountCredentials,
        Field(description="Required when connecting; kept when omitted on PATCH."),
    ] = None  # type: ignore[assignment]

    @field_validator("credentials", mode="wrap")
    @classmethod
    def _credentials(cls, value: Any, handler: Any) -> Any:
        value = _object_rule(value)
        model: type[RequestModel] = KeyCredentials
        if "service_account" in value:
            if set(value) != {"service_account"}:
                raise refuse("give either service_account or access_key + secret_access_key, not both")
            model = ServiceAccountCredentials
        try:
            return model.parse(value)
        except ValidationFailed as exc:
            raise refuse(exc.message, details=exc.details) from None

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        # A missing bucket gets the same words as a bad one.
        return {"bucket": None, **data}, {}


Parameters = LocalParameters | S3Parameters | GcsParameters
PARAMETERS_BY_TYPE: dict[str, type[Parameters]] = {"local": LocalParameters, "s3": S3Parameters, "gcs": GcsParameters}


def parameters_parse(type: str, value: Any, *, require_credentials: bool) -> Parameters:
    """Validate a storage type's parameters; raise ValidationFailed keyed below `parameters`."""
    if not isinstance(value, dict):
        raise validation_failed({"parameters": ["must be an object"]})
    details: Details = {}
    missing = value.get("credentials") is None and ("credentials" in value or require_credentials)
    if missing and type != "local":
        details["parameters.credentials"] = [CREDENTIALS_REQUIRED]
        value = {key: item for key, item in value.items() if key != "credentials"}
    try:
        parameters = PARAMETERS_BY_TYPE[type].parse(value)
    except ValidationFailed as exc:
        details = {**{f"parameters.{key}": messages for key, messages in exc.details.items()}, **details}
    if details:
        raise validation_failed(details)
    return parameters


def public_parameters(parameters: Parameters) -> dict:
    """The parameters a storage keeps in the clear (everything but the credentials)."""
    return parameters.model_dump(exclude={"credentials"}, exclude_none=True)


def secret_parameters(parameters: Parameters) -> dict | None:
    """The credentials to encrypt, or None when none were given."""
    credentials = getattr(parameters, "credentials", None)
    return credentials.model_dump() if credentials is not None else None


# --- the request bodies ---------------------------------------------------------------------------


class StorageCreate(RequestModel):
    """Connect a storage. The connection is checked (list, write, read, delete a probe) before it is saved."""

    name: StorageName
    type: Annotated[StorageType, BeforeValidator(_type_rule)]
    parameters: Annotated[Parameters, Field(description="Per type; credentials are write-only.")] = None  # type: ignore[assignment]

    @classmethod
    def cross_check(cls, data: dict) -> tuple[dict, Details]:
        return {"parameters": {}, **data}, {}

    @field_validator("parameters", mode="wrap")
    @classmethod
    def _parameters(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        type = info.data.get("type")
        if type is None:
            return None  # the type was refused: there is nothing to check the parameters against
        try:
            return parameters_parse(type, value, require_credentials=True)
        except ValidationFailed as exc:
            relative = {key.removeprefix("parameters").lstrip("."): messages for key, messages in exc.details.items()}
            raise refuse(exc.message, details=relative) from None


class StorageParametersPatch(ResponseModel):
    """The parameters to change: a given key replaces the stored one, null removes it, an absent key is kept."""

    path: str | None = None
    bucket: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    credentials: Annotated[
        KeyCredentials | ServiceAccountCredentials | None, Field(description="Replaces the stored credentials.")
    ] = None


class StorageUpdate(RequestModel):
    """Rename a storage and/or change its parameters; the connection is checked again. `type` cannot change."""

    name: Annotated[StorageName, BeforeValidator(lambda value: value if value is not None else _not_null())] = None  # type: ignore[assignment]
    type: Annotated[StorageType, SkipValidation, Field(description="If sent, it must be the storage's type.")] = None
    parameters: Annotated[StorageParametersPatch, SkipValidation, BeforeValidator(_object_rule)] = None  # type: ignore[assignment]


def _not_null() -> Any:
    raise refuse("must not be null")


# --- the answers ----------------------------------------------------------------------------------


class StorageParameters(ResponseModel):
    """A storage's parameters as stored; credentials are never returned."""

    path: str | None = None
    bucket: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


class Storage(ResponseModel):
    """A connected storage (never its credentials)."""

    id: int
    name: str
    type: StorageType
    parameters: StorageParameters
    created_at: Timestamp


class StorageDeleted(ResponseModel):
    id: int
