"""Google Cloud Storage: HMAC keys through Google's S3-compatible XML API, or a service-account key.

- HMAC (`credentials: {access_key, secret_access_key}`): the S3 connector pointed at
  https://storage.googleapis.com (region "auto"), or at a custom `endpoint_url`.
- Service account (`credentials: {service_account: {...}}`): django-storages' GoogleCloudStorage
  (google-cloud-storage), subclassed so one instance can talk to its own endpoint. The key file was
  accepted only with "type": "service_account" and Google's token_uri (services/storage_connections.py), so
  tokens are only ever minted at oauth2.googleapis.com.
- Emulators: a service-account storage with an `endpoint_url` is allowed only when that host is on
  GENERATOR_FETCH_ALLOW_HOSTS (development). It then uses AnonymousCredentials: emulators do not
  check tokens, and minting one would send the key's signed assertion to Google. A custom endpoint
  that is not allow-listed is refused for service-account keys, because the client would hand a
  live Google access token to that server.
Calls carry (connect, read) timeouts and a retry deadline of a few seconds: google-cloud-storage's
defaults wait up to minutes.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.views.decorators.debug import sensitive_variables
from google.api_core import exceptions as google_exceptions
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud.storage import Client
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account
from requests.exceptions import RequestException
from storages.backends.gcloud import GoogleCloudStorage

from generator.netpolicy import host_allowed_by_list
from generator.storage.base import Connector, Entries, Entry, ObjectMissing, StorageError, bucket_from
from generator.storage.endpoints import check_endpoint_address
from generator.storage.s3 import LIST_LIMIT, MAX_URL_TTL_S, URL_TTL_S, S3Connector

GOOGLE_XML_ENDPOINT = "https://storage.googleapis.com"
TIMEOUT = (3, 10)  # connect, read (seconds)
RETRY = DEFAULT_RETRY.with_timeout(4.0).with_delay(initial=0.25, maximum=1.0)
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]


class GCSHmacConnector(S3Connector):
    """GCS through its S3-compatible XML API with HMAC keys."""

    type = "gcs"
    uri_scheme = "gs"
    default_endpoint = GOOGLE_XML_ENDPOINT
    default_region = "auto"


class _GoogleCloudStorage(GoogleCloudStorage):
    """GoogleCloudStorage with a per-instance API endpoint and settings only from the constructor."""

    _client: Client | None  # set to None by the base class, made on first use below

    def __init__(self, *, api_endpoint: str | None = None, **options) -> None:
        self._api_endpoint = api_endpoint
        super().__init__(**options)

    def get_default_settings(self) -> dict:
        defaults = super().get_default_settings()
        defaults.update(
            project_id=None,
            credentials=None,
            custom_endpoint=None,
            location="",
            default_acl=None,
            querystring_auth=True,
            expiration=timedelta(seconds=URL_TTL_S),
            gzip=False,
            file_overwrite=True,
            object_parameters={},
            iam_sign_blob=False,
            sa_email=None,
        )
        return defaults

    @property
    def client(self) -> Client:
        if self._client is None:
            if self.credentials is None:
                # Never fall back to the server's application default credentials.
                raise StorageError("credentials are missing")
            options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
            self._client = Client(project=self.project_id, credentials=self.credentials, client_options=options)
        return self._client


class GCSServiceAccountConnector(Connector):
    """GCS through the JSON API with a service-account key (or anonymously against an emulator)."""

    type = "gcs"

    @sensitive_variables()  # keep credentials out of error-report tracebacks
    def __init__(self, *, parameters: dict, secrets: dict, team_slug: str) -> None:
        super().__init__(parameters=parameters, secrets=secrets, team_slug=team_slug)
        self.bucket_name = bucket_from(parameters)
        info = secrets.get("service_account")
        if not isinstance(info, dict):
            raise StorageError("credentials are missing")
        self.endpoint_url = parameters.get("endpoint_url") or None
        self.anonymous = False
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if not host_allowed_by_list(parts.hostname or "", port, settings.GENERATOR_FETCH_ALLOW_HOSTS):
                raise StorageError(
                    "a custom endpoint_url with a service-account key is only allowed for development "
                    "emulators listed in GENERATOR_FETCH_ALLOW_HOSTS; use HMAC keys for S3-compatible servers"
                )
            check_endpoint_address(self.endpoint_url)
            self.anonymous = True
            credentials = AnonymousCredentials()
        else:
            try:
                credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            except (ValueError, TypeError, KeyError):
                raise StorageError("the service-account key cannot be read") from None
        self.credentials = credentials
        self.storage = _GoogleCloudStorage(
            api_endpoint=self.endpoint_url,
            bucket_name=self.bucket_name,
            project_id=info.get("project_id") or "unknown-project",
            credentials=credentials,
            location=self.prefix,
        )

    @contextlib.contextmanager
    def _errors(self, action: str, key: str = ""):
        try:
            yield
        except google_exceptions.NotFound as exc:
            if key:
                raise ObjectMissing(f"no object at {key!r}") from None
            raise StorageError(f"{action} failed: 404 {_reason(exc)}") from None
        except google_exceptions.RetryError as exc:
            cause = exc.cause
            if isinstance(cause, RequestException):
                raise StorageError(
                    f"{action} failed: could not connect to the storage endpoint ({cause.__class__.__name__}, gave up after retries)"
                ) from None
            raise StorageError(
                f"{action} failed: gave up after retries: {_reason(cause) if cause else exc.message}"
            ) from None
        except google_exceptions.GoogleAPIError as exc:
            code = getattr(exc, "code", None)
            raise StorageError(f"{action} failed: {code or ''} {_reason(exc)}".replace("  ", " ")) from None
        except GoogleAuthError as exc:
            raise StorageError(f"{action} failed: authentication: {exc.__class__.__name__}") from None
        except RequestException as exc:
            raise StorageError(
                f"{action} failed: could not connect to the storage endpoint ({exc.__class__.__name__})"
            ) from None
        except (SuspiciousOperation, OSError) as exc:
            raise StorageError(f"{action} failed: {exc.__class__.__name__}") from None

    @property
    def bucket(self):
        return self.storage.bucket

    def list(self, folder: str = "") -> list[Entry]:
        base_key, list_prefix = self._list_prefix(folder)
        with self._errors("list"):
            iterator = self.storage.client.list_blobs(
                self.bucket_name,
                prefix=list_prefix,
                delimiter="/",
                max_results=LIST_LIMIT,
                timeout=TIMEOUT,
                retry=RETRY,
            )
            blobs = list(iterator)
            prefixes = sorted(iterator.prefixes)
        return self._entries(
            base_key=base_key,
            list_prefix=list_prefix,
            prefixes=prefixes,
            objects=[(blob.name, blob.size, blob.updated) for blob in blobs],
        )

    def walk(self, folder: str = "", *, recursive: bool = False, limit: int) -> Entries:
        """Page through the listing until `limit` files; GCS lists in key order."""
        base_key, list_prefix = self._list_prefix(folder)
        with self._errors("list"):
            blobs = self.storage.client.list_blobs(
                self.bucket_name,
                prefix=list_prefix,
                delimiter=None if recursive else "/",
                max_results=limit,
                page_size=LIST_LIMIT,
                timeout=TIMEOUT,
                retry=RETRY,
            )
            found = [self._file_entry(base_key, list_prefix, blob.name, blob.size, blob.updated) for blob in blobs]
        return [entry for entry in found if entry is not None]

    def read(self, key: str, *, max_bytes: int) -> bytes:
        full = self._key(key)
        with self._errors("read", key):
            blob = self.bucket.get_blob(full, timeout=TIMEOUT, retry=RETRY)
            if blob is None:
                raise ObjectMissing(f"no object at {key!r}")
            if blob.size is not None and blob.size > max_bytes:
                raise StorageError(f"the object is larger than {max_bytes} bytes")
            data = blob.download_as_bytes(timeout=TIMEOUT, retry=RETRY)
        if len(data) > max_bytes:
            raise StorageError(f"the object is larger than {max_bytes} bytes")
        return data

    def write_file(self, key: str, path: str, *, content_type: str) -> None:
        full = self._key(key)
        with self._errors("write"):
            blob = self.bucket.blob(full)
            blob.upload_from_filename(path, content_type=content_type, timeout=TIMEOUT, retry=RETRY)

    def delete(self, key: str) -> None:
        full = self._key(key)
        with contextlib.suppress(ObjectMissing), self._errors("delete", key):
            self.bucket.blob(full).delete(timeout=TIMEOUT, retry=RETRY)

    def exists(self, key: str) -> bool:
        full = self._key(key)
        with self._errors("exists"):
            return self.bucket.blob(full).exists(timeout=TIMEOUT, retry=RETRY)

    def download_url(self, key: str, *, expires_s: int = URL_TTL_S) -> str | None:
        full = self._key(key)
        if self.anonymous:
            # Emulators serve media without signatures; this form exists only for them.
            return f"{self.endpoint_url}/download/storage/v1/b/{quote(self.bucket_name)}/o/{quote(full, safe='')}?alt=media"
        with self._errors("presign"):
            return self.bucket.blob(full).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=max(1, min(expires_s, MAX_URL_TTL_S))),
                method="GET",
                credentials=self.credentials,
            )

    def describe(self, key: str) -> dict:
        full = self._key(key)
        return {"object_key": full, "object_bucket": self.bucket_name, "object_uri": f"gs://{self.bucket_name}/{full}"}


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    # google-api-core messages start with the request URL; keep only the server's reason.
    return message.split(": ", 1)[-1] if message.startswith(("GET ", "POST ", "PUT ", "DELETE ", "PATCH ")) else message


def connector_for(*, parameters: dict, secrets: dict, team_slug: str) -> Connector:
    """Return the GCS connector matching the stored credentials."""
    if "service_account" in secrets:
        return GCSServiceAccountConnector(parameters=parameters, secrets=secrets, team_slug=team_slug)
    return GCSHmacConnector(parameters=parameters, secrets=secrets, team_slug=team_slug)
