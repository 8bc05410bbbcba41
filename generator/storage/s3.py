"""S3 and S3-compatible buckets through django-storages' S3Storage (boto3), one instance per storage.

Credentials are always the storage's own keys: never the server's environment, profile or
instance role (session_profile and security_token are forced off), so a team can only reach what
its own keys allow. Every client has short timeouts and two attempts in total.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.views.decorators.debug import sensitive_variables
from storages.backends.s3 import S3Storage

from generator.storage.base import Connector, Entries, Entry, ObjectMissing, StorageError, bucket_from
from generator.storage.endpoints import check_endpoint_address
from generator.storage.pinning import pin_client

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
MAX_ATTEMPTS = 2
# A presigned URL lives 5 minutes unless asked otherwise (bearer links redirect to one), and at
# most an hour: the longest an upstream engine may take to fetch a photo handed over (SPEC 11).
URL_TTL_S = 300
MAX_URL_TTL_S = 3600
LIST_LIMIT = 1000
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def client_config(*, custom_endpoint: bool) -> Config:
    """Return the botocore config every S3 client here uses: short timeouts, bounded retries."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        signature_version="s3v4",
        # Virtual-host addressing needs wildcard DNS that S3-compatible servers rarely have.
        s3={"addressing_style": "path" if custom_endpoint else "auto"},
        # Newer boto3 adds CRC checksums with aws-chunked bodies by default; GCS and many
        # S3-compatible servers reject those, AWS does not need them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def describe_error(exc: Exception) -> str:
    """Turn a boto3 failure into a short user-facing reason (secrets are scrubbed by the caller)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "error"))
        message = str(error.get("Message") or "").strip()
        if code == "404" and not message:
            message = "not found"
        if code == "403" and not message:
            message = "access denied"
        return f"{code}: {message}" if message else code
    if isinstance(exc, BotoCoreError):
        return str(exc)
    return exc.__class__.__name__


# django-storages settings that must not come from Django settings or the environment.
_CREDENTIAL_SETTINGS = ("access_key", "secret_key", "security_token", "session_profile")
_DELIVERY_SETTINGS = ("custom_domain", "cloudfront_key_id", "cloudfront_key", "default_acl", "proxies", "verify")


class _Storage(S3Storage):
    """S3Storage whose settings all come from the constructor, never from Django settings."""

    def get_default_settings(self) -> dict:
        defaults = super().get_default_settings()
        # Credentials, proxies and domains only ever come from the storage's own parameters.
        defaults.update(dict.fromkeys(_CREDENTIAL_SETTINGS + _DELIVERY_SETTINGS))
        defaults.update(
            object_parameters={},
            querystring_auth=True,
            querystring_expire=URL_TTL_S,
            file_overwrite=True,
            gzip=False,
            location="",
        )
        return defaults

    # Set by S3Connector for a checked custom endpoint: the addresses its connections may dial.
    pinned_host = ""
    pinned_addresses: tuple[str, ...] | None = None

    @property
    def connection(self):
        resource = super().connection
        if self.pinned_addresses is not None:
            pin_client(resource.meta.client, host=self.pinned_host, addresses=self.pinned_addresses)
        return resource


class S3Connector(Connector):
    type = "s3"
    uri_scheme = "s3"
    default_endpoint: str | None = None
    default_region = "us-east-1"

    @sensitive_variables()  # keep credentials out of error-report tracebacks
    def __init__(self, *, parameters: dict, secrets: dict, team_slug: str) -> None:
        super().__init__(parameters=parameters, secrets=secrets, team_slug=team_slug)
        self.bucket = bucket_from(parameters)
        custom = parameters.get("endpoint_url") or None
        # UrlRejected propagates: the caller maps it to 422 / job error.
        pinned = check_endpoint_address(custom) if custom else None
        self.endpoint_url = custom or self.default_endpoint
        access_key, secret_key = secrets.get("access_key"), secrets.get("secret_access_key")
        if not access_key or not secret_key:
            # Without keys boto3 would fall back to the server's own credentials: never allowed.
            raise StorageError("credentials are missing")
        self.storage = _Storage(
            bucket_name=self.bucket,
            access_key=access_key,
            secret_key=secret_key,
            region_name=parameters.get("region") or self.default_region,
            endpoint_url=self.endpoint_url,
            location=self.prefix,
            client_config=client_config(custom_endpoint=self.endpoint_url is not None),
        )
        if pinned is not None:
            # Only the checked addresses are dialled (storage/pinning.py), never through an
            # environment proxy, which would resolve the name again.
            self.storage.pinned_host = urlsplit(str(custom)).hostname or ""
            self.storage.pinned_addresses = pinned
            self.storage.client_config = self.storage.client_config.merge(Config(proxies={}))

    @property
    def client(self):
        return self.storage.connection.meta.client

    @contextlib.contextmanager
    def _errors(self, action: str, key: str = ""):
        try:
            yield
        except ClientError as exc:
            reason = describe_error(exc)
            if key and reason.split(":", 1)[0] in _MISSING_CODES:
                raise ObjectMissing(f"no object at {key!r}") from None
            raise StorageError(f"{action} failed: {reason}") from None
        except (BotoCoreError, SuspiciousOperation, OSError) as exc:
            raise StorageError(f"{action} failed: {describe_error(exc)}") from None

    def list(self, folder: str = "") -> list[Entry]:
        base_key, list_prefix = self._list_prefix(folder)
        with self._errors("list"):
            page = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=list_prefix, Delimiter="/", MaxKeys=LIST_LIMIT
            )
        return self._entries(
            base_key=base_key,
            list_prefix=list_prefix,
            prefixes=[common["Prefix"] for common in page.get("CommonPrefixes", ())],
            objects=[(item["Key"], item.get("Size"), item.get("LastModified")) for item in page.get("Contents", ())],
        )

    def walk(self, folder: str = "", *, recursive: bool = False, limit: int) -> Entries:
        """Page through the listing (1,000 keys a request) until `limit` files; S3 lists in key order."""
        base_key, list_prefix = self._list_prefix(folder)
        arguments = {"Bucket": self.bucket, "Prefix": list_prefix, "PaginationConfig": {"PageSize": LIST_LIMIT}}
        if not recursive:
            arguments["Delimiter"] = "/"
        files: Entries = []
        with self._errors("list"):
            for page in self.client.get_paginator("list_objects_v2").paginate(**arguments):
                for item in page.get("Contents", ()):
                    entry = self._file_entry(
                        base_key, list_prefix, item["Key"], item.get("Size"), item.get("LastModified")
                    )
                    if entry is not None:
                        files.append(entry)
                    if len(files) >= limit:
                        return files
        return files

    def read(self, key: str, *, max_bytes: int) -> bytes:
        full = self._key(key)
        with self._errors("read", key):
            try:
                # The range bounds the download even if the object grows after any size check.
                response = self.client.get_object(Bucket=self.bucket, Key=full, Range=f"bytes=0-{max_bytes}")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # an empty object has no byte 0
                raise
            data = response["Body"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise StorageError(f"the object is larger than {max_bytes} bytes")
        return data

    def write_file(self, key: str, path: str, *, content_type: str) -> None:
        self._key(key)
        with self._errors("write"), open(path, "rb") as handle:
            content = File(handle)
            content.content_type = content_type  # type: ignore[attr-defined]  # django-storages reads it
            saved = self.storage.save(key, content)
        if saved != key:
            raise StorageError("write failed: the storage changed the object name")

    def delete(self, key: str) -> None:
        self._key(key)
        with self._errors("delete"):
            self.storage.delete(key)

    def exists(self, key: str) -> bool:
        self._key(key)
        with self._errors("exists"):
            return self.storage.exists(key)

    def download_url(self, key: str, *, expires_s: int = URL_TTL_S) -> str | None:
        self._key(key)
        with self._errors("presign"):
            return self.storage.url(key, expire=max(1, min(expires_s, MAX_URL_TTL_S)))

    def describe(self, key: str) -> dict:
        full = self._key(key)
        return {
            "object_key": full,
            "object_bucket": self.bucket,
            "object_uri": f"{self.uri_scheme}://{self.bucket}/{full}",
        }
