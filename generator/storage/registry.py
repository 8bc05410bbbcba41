"""One registry from storage type to connector class (local, s3, gcs)."""

from __future__ import annotations

from importlib.util import find_spec

from django.views.decorators.debug import sensitive_variables

from generator.crypto import decrypt_json
from generator.models import Storage
from generator.netpolicy import UrlRejected
from generator.storage.base import Connector, StorageError

# Each of the model's storage types, with its connector and the client library it needs; a type
# whose library is missing is not offered.
_TYPES: dict[str, tuple[str, str | None]] = {
    Storage.Type.S3: ("generator.storage.s3.S3Connector", "boto3"),
    Storage.Type.GCS: ("generator.storage.gcs.connector_for", "google.cloud.storage"),
    Storage.Type.LOCAL: ("generator.storage.local.LocalConnector", None),
}


def _library_present(module: str | None) -> bool:
    if module is None:
        return True
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def supported_types() -> list[str]:
    """Return the storage types this build supports."""
    return [str(name) for name, (_path, module) in _TYPES.items() if _library_present(module)]


def _factory(type: str):
    if type not in supported_types():
        raise StorageError(f"storage type {type!r} is not supported by this server")
    dotted = _TYPES[type][0]
    module_name, _, attr = dotted.rpartition(".")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


@sensitive_variables()  # keep credentials out of error-report tracebacks
def build_connector(*, type: str, parameters: dict, secrets: dict, team_slug: str) -> Connector:
    """Build a connector from raw (validated) values; used before a storage is saved."""
    return _factory(type)(parameters=parameters, secrets=secrets, team_slug=team_slug)


@sensitive_variables()  # keep credentials out of error-report tracebacks
def get_connector(storage) -> Connector:
    """Return the connector for a saved Storage; raise StorageError when it cannot be used."""
    try:
        secrets = decrypt_json(storage.secrets_encrypted)
    except ValueError as exc:
        raise StorageError(str(exc)) from None
    try:
        return build_connector(
            type=storage.type, parameters=dict(storage.parameters), secrets=secrets, team_slug=storage.team.slug
        )
    except UrlRejected as exc:
        # The endpoint was fine when saved; its DNS now points somewhere refused.
        raise StorageError(f"endpoint_url refused: {exc}") from None
