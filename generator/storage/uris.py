"""storage://<name>/<key> URIs and the key rules (docs/security.md, "Storages")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")
MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class KeyRejected(ValueError):
    """A storage name, key or path is not allowed; the message is user-facing."""


@dataclass(frozen=True)
class StorageUri:
    name: str
    key: str

    @property
    def is_folder(self) -> bool:
        return self.key.endswith("/")

    def __str__(self) -> str:
        return f"storage://{self.name}/{self.key}"


def validate_key(key: str, *, allow_folder: bool = True) -> str:
    """Return the key if it is a safe relative object key, else raise KeyRejected."""
    if not isinstance(key, str) or not key:
        raise KeyRejected("the object key is empty")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise KeyRejected(f"the object key is longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise KeyRejected("the object key contains control characters")
    if "\\" in key:
        raise KeyRejected("the object key contains a backslash")
    if key.startswith("/"):
        raise KeyRejected("the object key must be relative (no leading '/')")
    if "//" in key:
        raise KeyRejected("the object key contains an empty segment ('//')")
    decoded = key
    for _ in range(3):  # percent-encoding can be nested: %252e%252e
        decoded = unquote(decoded)
    if "\\" in decoded or _CONTROL.search(decoded):
        raise KeyRejected("the object key contains encoded control characters or backslashes")
    for segment in decoded.split("/"):
        if segment in {"..", "."}:
            raise KeyRejected("the object key contains '.' or '..' segments")
    if decoded.startswith("/"):
        raise KeyRejected("the object key must be relative (no leading '/')")
    if not allow_folder and key.endswith("/"):
        raise KeyRejected("the object key names a folder, not a file")
    return key


def validate_prefix(path: str) -> str:
    """Normalise a storage's `path` parameter: strip leading/trailing '/', then apply the key rules."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise KeyRejected("path must be a string")
    stripped = path.strip("/")
    if not stripped:
        return ""
    validate_key(stripped)
    return stripped


def parse_storage_uri(uri: str) -> StorageUri:
    """Split storage://<name>/<key>; raise KeyRejected when the form or the key is not allowed."""
    if not isinstance(uri, str) or not uri.startswith("storage://"):
        raise KeyRejected("expected storage://<name>/<path>")
    rest = uri[len("storage://") :]
    name, sep, key = rest.partition("/")
    if not sep or not NAME_RE.match(name):
        raise KeyRejected("expected storage://<name>/<path> with a valid storage name")
    validate_key(key)
    return StorageUri(name=name, key=key)


def join_key(prefix: str, key: str) -> str:
    """Join a storage prefix and a validated key."""
    return f"{prefix}/{key}" if prefix else key
