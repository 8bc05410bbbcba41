"""Local folders under GENERATOR_LOCAL_STORAGE_ROOT/<team-slug>/<path>, served through our /v/ proxy.

Every key is checked twice: by the key rules (storage.uris.validate_key) and by resolving the
real path (symlinks followed) and requiring it to stay inside the storage's own root. A symlink
swapped in between that check and the open is out of reach for API users (they cannot create
symlinks); only someone with shell access to the root could race it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from generator.storage.base import (
    CheckReport,
    CheckStep,
    Connector,
    Entry,
    ObjectMissing,
    StorageError,
)
from generator.storage.uris import KeyRejected, join_key, validate_key

_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class LocalConnector(Connector):
    type = "local"

    def __init__(self, *, parameters: dict, secrets: dict, team_slug: str) -> None:
        super().__init__(parameters=parameters, secrets=secrets, team_slug=team_slug)
        if not _SLUG_RE.match(team_slug or ""):
            raise StorageError("the team has no usable folder name")
        base = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT).resolve()
        self.team_root = (base / team_slug).resolve()
        if not _inside(self.team_root, base) or self.team_root == base:
            raise StorageError("the team folder resolves outside the local storage root")
        self.root = (self.team_root / self.prefix).resolve() if self.prefix else self.team_root
        if not _inside(self.root, self.team_root):
            raise StorageError("path resolves outside the team's local storage folder")

    def _path(self, key: str, *, allow_folder: bool = False) -> Path:
        """Return the real filesystem path for a key, refusing anything outside the root."""
        try:
            validate_key(key, allow_folder=allow_folder)
        except KeyRejected as exc:
            raise StorageError(str(exc)) from None
        resolved = (self.root / key).resolve()
        if not _inside(resolved, self.root) or (resolved == self.root and not allow_folder):
            raise StorageError("the object key resolves outside the storage")
        return resolved

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(f"no object at {key!r}")
        return path

    def list(self, folder: str = "") -> list[Entry]:
        directory = self._path(folder, allow_folder=True) if folder else self.root
        if not directory.is_dir():
            if folder:
                raise ObjectMissing(f"no folder at {folder!r}")
            return []
        base_key = folder if not folder or folder.endswith("/") else folder + "/"
        folders: list[Entry] = []
        files: list[Entry] = []
        try:
            items = sorted(os.scandir(directory), key=lambda item: item.name)
        except OSError as exc:
            raise StorageError(f"cannot list the folder: {exc.strerror or 'error'}") from None
        for item in items:
            real = Path(item.path).resolve()
            if not _inside(real, self.root):
                continue  # a symlink pointing out of the storage is never shown
            if real.is_dir():
                folders.append(Entry(name=item.name, key=f"{base_key}{item.name}/", is_folder=True))
            elif real.is_file():
                stat = real.stat()
                files.append(
                    Entry(
                        name=item.name,
                        key=f"{base_key}{item.name}",
                        is_folder=False,
                        size=stat.st_size,
                        modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
                    )
                )
        return folders + files

    def read(self, key: str, *, max_bytes: int) -> bytes:
        path = self._file(key)
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise StorageError(f"the object is larger than {max_bytes} bytes")
        return data

    def write_file(self, key: str, path: str, *, content_type: str) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # mkdir may have followed a symlinked parent created meanwhile: check again.
            if not _inside(target.parent.resolve(), self.root):
                raise StorageError("the object key resolves outside the storage")
            handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as out, open(path, "rb") as src:
                    shutil.copyfileobj(src, out)
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write the object: {exc.strerror or 'error'}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            if path.is_file():
                path.unlink()
        except OSError as exc:
            raise StorageError(f"cannot delete the object: {exc.strerror or 'error'}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def download_url(self, key: str, *, expires_s: int = 300) -> str | None:
        return None

    def describe(self, key: str) -> dict:
        full_key = join_key(self.prefix, self._path(key).relative_to(self.root).as_posix())
        return {
            "object_key": full_key,
            "object_bucket": self.team_slug,
            "object_uri": f"local://{self.team_slug}/{full_key}",
        }

    def open_local(self, key: str) -> BinaryIO:
        return self._file(key).open("rb")

    def check(self) -> CheckReport:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            detail = f"cannot create the folder: {exc.strerror or 'error'}"
            return CheckReport(steps=[CheckStep(name="list", ok=False, detail=detail)])
        return super().check()
