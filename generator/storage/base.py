"""The one interface every storage connector implements (local, s3, gcs)."""

from __future__ import annotations

import posixpath
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.views.decorators.debug import sensitive_variables

from generator.storage.uris import KeyRejected, join_key, validate_key, validate_prefix

# Names a folder listing offers as photos; the worker then checks the content (engine/decode.py).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")


def is_image_name(name: str) -> bool:
    """Return True when a file name has one of the photo extensions (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


class StorageError(Exception):
    """A storage operation failed; the message is user-facing and never contains secrets."""


class ObjectMissing(StorageError):
    """The object does not exist."""


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing; `key` is relative to the storage's prefix."""

    name: str
    key: str
    is_folder: bool
    size: int | None = None
    modified: datetime | None = None


Entries = list[Entry]


@dataclass
class CheckStep:
    name: str  # "list", "write", "read", "delete"
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    steps: list[CheckStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def first_error(self) -> str:
        return next((f"{s.name}: {s.detail}" for s in self.steps if not s.ok), "")


def _addressable(key: str) -> bool:
    try:
        validate_key(key)
    except KeyRejected:
        return False
    return True


def prefix_from(parameters: dict) -> str:
    """Return the storage's normalised `path` prefix, or raise StorageError naming it."""
    try:
        return validate_prefix(parameters.get("path", ""))
    except KeyRejected as exc:
        raise StorageError(f"path: {exc}") from None


def bucket_from(parameters: dict) -> str:
    """Return the storage's bucket name, or raise StorageError when it is missing."""
    bucket = parameters.get("bucket") or ""
    if not bucket:
        raise StorageError("bucket is missing")
    return bucket


class Connector(ABC):
    """A connection to a bucket or folder. Keys are relative to the storage's `path` prefix."""

    type: str = ""
    prefix: str = ""

    @sensitive_variables()  # keep credentials out of error-report tracebacks
    def __init__(self, *, parameters: dict, secrets: dict, team_slug: str) -> None:
        self.parameters = parameters
        self.secrets = secrets
        self.team_slug = team_slug
        self.prefix = prefix_from(parameters)

    def _list_prefix(self, folder: str) -> tuple[str, str]:
        """Check a folder to list; return its key ending in '/' ("" for the top) and the full prefix to list."""
        if folder:
            self._key(folder, allow_folder=True)
        base_key = folder if not folder or folder.endswith("/") else folder + "/"
        return base_key, join_key(self.prefix, base_key)  # "p/" for the top of prefix "p"

    @staticmethod
    def _entries(
        *, base_key: str, list_prefix: str, prefixes: Iterable[str], objects: Iterable[tuple[str, int | None, Any]]
    ) -> list[Entry]:
        """Turn one level of a bucket listing (common prefixes; objects as (full key, size, modified)) into entries.

        Objects whose names break the key rules cannot be used as input, so they are not shown.
        """
        folders = []
        for common in prefixes:
            relative = common[len(list_prefix) :]
            if _addressable(base_key + relative):
                folders.append(Entry(name=relative.rstrip("/"), key=base_key + relative, is_folder=True))
        found = (Connector._file_entry(base_key, list_prefix, *listed) for listed in objects)
        files = [entry for entry in found if entry is not None]
        return sorted(folders, key=lambda e: e.name) + sorted(files, key=lambda e: e.name)

    @staticmethod
    def _file_entry(base_key: str, list_prefix: str, full: str, size: int | None, modified: Any) -> Entry | None:
        """The entry of one listed object, or None for a folder marker or a name that breaks the key rules."""
        relative = full[len(list_prefix) :]
        if not relative or relative.endswith("/") or not _addressable(base_key + relative):
            return None
        return Entry(
            name=posixpath.basename(relative), key=base_key + relative, is_folder=False, size=size, modified=modified
        )

    def _key(self, key: str, *, allow_folder: bool = False) -> str:
        """Return the full object key (prefix + key) after the key rules."""
        try:
            validate_key(key, allow_folder=allow_folder)
        except KeyRejected as exc:
            raise StorageError(str(exc)) from None
        return join_key(self.prefix, key)

    @abstractmethod
    def list(self, folder: str = "") -> list[Entry]:
        """List one folder level (folders first)."""

    def walk(self, folder: str = "", *, recursive: bool = False, limit: int) -> Entries:
        """Return up to `limit` files of a folder (and, recursive, of its subfolders), ordered by key."""
        files: Entries = []
        pending = [folder]
        while pending and len(files) < limit:
            entries = self.list(pending.pop(0))
            files.extend(entry for entry in entries if not entry.is_folder)
            if recursive:
                pending.extend(entry.key for entry in entries if entry.is_folder)
        return sorted(files, key=lambda entry: entry.key)[:limit]

    @abstractmethod
    def read(self, key: str, *, max_bytes: int) -> bytes:
        """Return the object's bytes; raise StorageError past max_bytes, ObjectMissing if absent."""

    @abstractmethod
    def write_file(self, key: str, path: str, *, content_type: str) -> None:
        """Upload a local file to key (overwriting)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object (no error if absent)."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Return True when the object exists."""

    @abstractmethod
    def download_url(self, key: str, *, expires_s: int = 300) -> str | None:
        """Return a presigned URL living expires_s (at most an hour), or None where we proxy (local)."""

    @abstractmethod
    def describe(self, key: str) -> dict:
        """Return object_key, object_bucket, object_uri for output_object."""

    def write_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Upload bytes to key (overwriting)."""
        with tempfile.NamedTemporaryFile(prefix="generator-upload-") as handle:
            handle.write(data)
            handle.flush()
            self.write_file(key, handle.name, content_type=content_type)

    def check(self) -> CheckReport:
        """List, then write, read back and delete a probe object under the prefix."""
        report = CheckReport()
        probe_key = f".generator-probe-{uuid.uuid4().hex}.txt"
        payload = f"generator connection probe {probe_key}".encode()
        steps = (
            ("list", lambda: self.list("")),
            ("write", lambda: self.write_bytes(probe_key, payload, content_type="text/plain")),
            ("read", lambda: self._check_read_back(probe_key, payload)),
            ("delete", lambda: self.delete(probe_key)),
        )
        for name, step in steps:
            try:
                step()
            except StorageError as exc:
                report.steps.append(CheckStep(name=name, ok=False, detail=str(exc)))
                if name in {"write", "read"}:
                    self._forget_probe(probe_key)
                break
            report.steps.append(CheckStep(name=name, ok=True))
        return report

    def _check_read_back(self, key: str, payload: bytes) -> None:
        if self.read(key, max_bytes=len(payload) + 1) != payload:
            raise StorageError("the probe object read back differs from what was written")

    def _forget_probe(self, key: str) -> None:
        # Best effort: a failed check should not leave a probe object behind if delete still works.
        try:
            self.delete(key)
        except StorageError:
            return

    def open_local(self, key: str):
        """Open the object for streaming (local storages only)."""
        raise StorageError("this storage type is not served through the local proxy")
