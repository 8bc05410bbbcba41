"""Storage connections: check the connection of a validated storage and save it with encrypted secrets.

The body's rules (name, type, parameters per type) are the contract's (contract/storages.py);
here are the rules that need more: a name already used in the team, and the live check.
"""

from __future__ import annotations

from datetime import UTC

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from generator.contract.base import validation_failed
from generator.contract.storages import StorageCreate, parameters_parse, public_parameters, secret_parameters
from generator.crypto import decrypt_json, encrypt_json
from generator.errors import ValidationFailed
from generator.models import Storage
from generator.netpolicy import UrlRejected
from generator.storage.base import CheckReport, CheckStep, Entry, StorageError
from generator.storage.registry import build_connector, get_connector


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


TAKEN = "a storage with this name already exists in the team"


def _taken() -> ValidationFailed:
    return validation_failed({"name": [TAKEN]})


# Error reports (DEBUG pages, admin e-mails) must not show the credentials held in locals.
@sensitive_variables()
def storage_connect(*, team, user, request: StorageCreate) -> Storage:
    """Check the connection of a validated storage and save it with its secrets encrypted."""
    if _name_taken(team=team, name=request.name):
        raise _taken()
    public, secrets = public_parameters(request.parameters), secret_parameters(request.parameters) or {}
    _check_connection(type=request.type, public=public, secrets=secrets, team_slug=team.slug)
    try:
        with transaction.atomic():
            return Storage.objects.create(
                team=team,
                name=request.name,
                type=request.type,
                parameters=public,
                secrets_encrypted=encrypt_json(secrets),
                created_by=user,
            )
    except IntegrityError:
        raise _taken() from None


@sensitive_variables()
def storage_create(*, team, user, name: str, type: str, parameters: dict) -> Storage:
    """Validate a storage (the contract's rules), check the connection and save it."""
    request = StorageCreate.parse({"name": name, "type": type, "parameters": parameters})
    return storage_connect(team=team, user=user, request=request)


@sensitive_variables()
def storage_update(*, team, storage: Storage, name: str | None = None, parameters: dict | None = None) -> Storage:
    """Rename a storage (name already validated) and/or change its parameters, re-checking the connection.

    A given parameter replaces the stored one, null removes it, an absent one is kept; so are the
    credentials unless new ones are given.
    """
    if storage.team_id != team.pk:
        raise ValidationFailed("unknown storage")
    public = dict(storage.parameters)
    secrets = None
    if parameters is not None:
        merged = {k: v for k, v in {**storage.parameters, **parameters}.items() if v is not None}
        merged.pop("credentials", None)
        if "credentials" in parameters:
            merged["credentials"] = parameters["credentials"]
        checked = parameters_parse(storage.type, merged, require_credentials=False)
        public, secrets = public_parameters(checked), secret_parameters(checked)
    if name is not None and _name_taken(team=team, name=name, exclude_pk=storage.pk):
        raise _taken()
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
        raise _taken() from None
    return storage


def storage_folder_list(*, storage: Storage, folder: str) -> list[Entry]:
    """List one folder level of a storage (sub-folders and files); StorageError when it cannot be read."""
    return get_connector(storage).list(folder)


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
