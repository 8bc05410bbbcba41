"""Storage connections: validate, check the connection, save with encrypted secrets (SPEC 2.5, 10)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from generator.crypto import decrypt_json, encrypt_json
from generator.errors import ValidationFailed
from generator.models import Storage
from generator.netpolicy import UrlRejected
from generator.storage.base import CheckReport, CheckStep, StorageError
from generator.storage.endpoints import check_endpoint_syntax
from generator.storage.registry import build_connector, get_connector, supported_types
from generator.storage.uris import NAME_RE, KeyRejected, validate_prefix

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

# Non-secret parameters each type accepts besides `credentials`.
PARAMETER_KEYS = {
    "local": frozenset({"path"}),
    "s3": frozenset({"bucket", "path", "region", "endpoint_url", "credentials"}),
    "gcs": frozenset({"bucket", "path", "endpoint_url", "credentials"}),
}


@dataclass
class _Errors:
    details: dict[str, list[str]]

    def add(self, field: str, message: str) -> None:
        self.details.setdefault(field, []).append(message)


def _secret_strings(secrets: dict) -> list[str]:
    found: list[str] = []
    for value in secrets.values():
        if isinstance(value, dict):
            found.extend(_secret_strings(value))
        elif isinstance(value, str) and len(value) >= 4:
            found.append(value)
    return sorted(found, key=len, reverse=True)


def scrub(message: str, secrets: dict) -> str:
    """Remove every credential string (and every line of a private key) from a message."""
    for secret in _secret_strings(secrets):
        for piece in [secret, *[line for line in secret.splitlines() if len(line) >= 8]]:
            message = message.replace(piece, "[redacted]")
    return message


def _validate_name(name, errors: _Errors) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors.add(
            "name",
            "must be 1..50 characters: letters, digits, '_' or '-', starting with a letter or digit",
        )


def _validate_service_account(info, errors: _Errors) -> None:
    field = "parameters.credentials.service_account"
    if not isinstance(info, dict):
        errors.add(field, "must be the service-account key file (a JSON object)")
        return
    unknown = sorted(set(info) - SERVICE_ACCOUNT_KEYS)
    if unknown:
        errors.add(field, f"unknown keys: {', '.join(unknown)}")
    if info.get("type") != "service_account":
        errors.add(field, 'only key files with "type": "service_account" are accepted')
    if info.get("token_uri") != GOOGLE_TOKEN_URI:
        errors.add(field, f'token_uri must be "{GOOGLE_TOKEN_URI}"')
    if info.get("universe_domain", "googleapis.com") != "googleapis.com":
        errors.add(field, 'universe_domain must be "googleapis.com"')
    for key in ("client_email", "private_key"):
        if not isinstance(info.get(key), str) or not info.get(key):
            errors.add(field, f"{key} is missing")
    if any(not isinstance(value, str) for value in info.values()):
        errors.add(field, "every value must be a string")
    if field in errors.details:
        return
    from google.oauth2 import service_account

    try:
        service_account.Credentials.from_service_account_info(info)
    except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm, ...
        # The library's message may quote the key material: never echo it.
        errors.add(field, "the private key cannot be read")


@sensitive_variables()
def _validate_credentials(type: str, credentials, errors: _Errors) -> dict:
    field = "parameters.credentials"
    if credentials is None:
        errors.add(field, "is required")
        return {}
    if not isinstance(credentials, dict):
        errors.add(field, "must be an object")
        return {}
    if type == "gcs" and "service_account" in credentials:
        if set(credentials) != {"service_account"}:
            errors.add(field, "give either service_account or access_key + secret_access_key, not both")
            return {}
        _validate_service_account(credentials["service_account"], errors)
        return {"service_account": credentials["service_account"]}
    unknown = sorted(set(credentials) - {"access_key", "secret_access_key"})
    if unknown:
        errors.add(field, f"unknown keys: {', '.join(unknown)}")
    for key in ("access_key", "secret_access_key"):
        value = credentials.get(key)
        if not isinstance(value, str) or not value or len(value) > 1000 or not value.isprintable():
            errors.add(f"{field}.{key}", "is required (a non-empty string)")
    if len(str(credentials)) > MAX_SECRET_CHARS:
        errors.add(field, "is too large")
    return {key: credentials.get(key) for key in ("access_key", "secret_access_key")}


@sensitive_variables()
def _validate_parameters(
    type: str, parameters, errors: _Errors, *, require_credentials: bool
) -> tuple[dict, dict | None]:
    """Return (public parameters, secrets or None when not given), recording problems in errors."""
    if not isinstance(parameters, dict):
        errors.add("parameters", "must be an object")
        return {}, None
    allowed = PARAMETER_KEYS[type]
    for key in sorted(set(parameters) - allowed):
        errors.add(f"parameters.{key}", f"unknown parameter for type {type}")
    public: dict = {}
    try:
        public["path"] = validate_prefix(parameters.get("path") or "")
    except KeyRejected as exc:
        errors.add("parameters.path", str(exc))
    if type == "local":
        return public, {}
    bucket = parameters.get("bucket")
    if not isinstance(bucket, str) or not BUCKET_RE.match(bucket) or ".." in bucket:
        errors.add("parameters.bucket", "is required: 3..222 characters, lowercase letters, digits, '.', '_' or '-'")
    else:
        public["bucket"] = bucket
    if type == "s3" and parameters.get("region") is not None:
        region = parameters["region"]
        if not isinstance(region, str) or not REGION_RE.match(region):
            errors.add("parameters.region", "must look like us-east-1")
        else:
            public["region"] = region
    if parameters.get("endpoint_url") is not None:
        try:
            public["endpoint_url"] = check_endpoint_syntax(parameters["endpoint_url"])
        except UrlRejected as exc:
            errors.add("parameters.endpoint_url", str(exc))
    secrets = None
    if "credentials" in parameters or require_credentials:
        secrets = _validate_credentials(type, parameters.get("credentials"), errors)
    return public, secrets


@sensitive_variables()
def _check_connection(*, type: str, public: dict, secrets: dict, team_slug: str) -> None:
    """Build the connector and run the probe; raise ValidationFailed with the provider's reason."""
    try:
        connector = build_connector(type=type, parameters=public, secrets=secrets, team_slug=team_slug)
    except UrlRejected as exc:
        raise ValidationFailed(
            f"endpoint_url refused: {exc}", details={"parameters.endpoint_url": [str(exc)]}
        ) from None
    except StorageError as exc:
        reason = scrub(str(exc), secrets)
        raise ValidationFailed(f"the storage cannot be used: {reason}", details={"parameters": [reason]}) from None
    report = connector.check()
    if not report.ok:
        reason = scrub(report.first_error, secrets)
        raise ValidationFailed(f"the connection check failed: {reason}", details={"parameters": [reason]})


def _name_taken(*, team, name: str, exclude_pk: int | None = None) -> bool:
    qs = Storage.objects.filter(team=team, name=name)
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def _raise_if(errors: _Errors) -> None:
    if errors.details:
        first = next(iter(errors.details.items()))
        raise ValidationFailed(f"{first[0]}: {first[1][0]}", details=errors.details)


# Error reports (DEBUG pages, admin e-mails) must not show the credentials held in locals.
@sensitive_variables()
def storage_create(*, team, user, name: str, type: str, parameters: dict) -> Storage:
    """Validate, check the connection and save a new storage with its secrets encrypted."""
    errors = _Errors({})
    _validate_name(name, errors)
    if type not in supported_types():
        errors.add("type", f"must be one of: {', '.join(supported_types())}")
        _raise_if(errors)
    public, secrets = _validate_parameters(type, parameters, errors, require_credentials=type != "local")
    if not errors.details and _name_taken(team=team, name=name):
        errors.add("name", "a storage with this name already exists in the team")
    _raise_if(errors)
    secrets = secrets or {}
    _check_connection(type=type, public=public, secrets=secrets, team_slug=team.slug)
    try:
        with transaction.atomic():
            return Storage.objects.create(
                team=team,
                name=name,
                type=type,
                parameters=public,
                secrets_encrypted=encrypt_json(secrets),
                created_by=user,
            )
    except IntegrityError:
        raise ValidationFailed(
            "name: a storage with this name already exists in the team",
            details={"name": ["a storage with this name already exists in the team"]},
        ) from None


@sensitive_variables()
def storage_update(*, team, storage: Storage, name: str | None = None, parameters: dict | None = None) -> Storage:
    """Rename a storage and/or change its parameters (credentials kept unless given), re-checking it."""
    if storage.team_id != team.pk:
        raise ValidationFailed("unknown storage")
    errors = _Errors({})
    if name is not None:
        _validate_name(name, errors)
        if not errors.details and _name_taken(team=team, name=name, exclude_pk=storage.pk):
            errors.add("name", "a storage with this name already exists in the team")
    public = dict(storage.parameters)
    secrets = None
    if parameters is not None:
        if not isinstance(parameters, dict):
            errors.add("parameters", "must be an object")
        else:
            # A given key replaces the stored one, null removes it, an absent key is kept.
            merged = {k: v for k, v in {**storage.parameters, **parameters}.items() if v is not None}
            merged.pop("credentials", None)
            if "credentials" in parameters:
                merged["credentials"] = parameters["credentials"]
            public, secrets = _validate_parameters(storage.type, merged, errors, require_credentials=False)
    _raise_if(errors)
    if parameters is not None:
        if secrets is None:
            secrets = decrypt_json(storage.secrets_encrypted)
        _check_connection(type=storage.type, public=public, secrets=secrets, team_slug=team.slug)
        storage.parameters = public
        storage.secrets_encrypted = encrypt_json(secrets)
    if name is not None:
        storage.name = name
    try:
        with transaction.atomic():
            storage.save()
    except IntegrityError:
        raise ValidationFailed(
            "name: a storage with this name already exists in the team",
            details={"name": ["a storage with this name already exists in the team"]},
        ) from None
    return storage


def storage_delete(*, team, storage: Storage) -> None:
    """Disconnect a storage; the bucket or folder and its contents are left untouched."""
    Storage.objects.filter(team=team, pk=storage.pk).delete()


@sensitive_variables()
def storage_check(*, storage: Storage) -> CheckReport:
    """Run the connection probe for a saved storage; details never contain secrets."""
    try:
        secrets = decrypt_json(storage.secrets_encrypted)
    except ValueError as exc:
        return CheckReport(steps=[CheckStep(name="connect", ok=False, detail=str(exc))])
    try:
        report = get_connector(storage).check()
    except (StorageError, UrlRejected) as exc:
        report = CheckReport(steps=[CheckStep(name="connect", ok=False, detail=str(exc))])
    for step in report.steps:
        step.detail = scrub(step.detail, secrets)
    return report


def storage_to_api(storage: Storage) -> dict:
    """Return the API's data object for a storage (never its credentials)."""
    return {
        "id": storage.pk,
        "name": storage.name,
        "type": storage.type,
        "parameters": {key: value for key, value in storage.parameters.items() if key != "credentials"},
        "created_at": storage.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
