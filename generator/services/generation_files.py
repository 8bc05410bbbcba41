"""Where a generation's files live, and removing them when it fails or is deleted.

The poster (and a temporary video) sit in the default storage under names made from the
generation's UUID; a storage output sits in the team's storage at `output_key`. A folder output
(`storage://s/dir/`) gets a file name we made up, so we may remove it; an exact key
(`storage://s/out/file.mp4`) is the customer's object and is never removed.
"""

from __future__ import annotations

import logging

from django.core.files import File
from django.core.files.storage import default_storage

from generator.models import Generation
from generator.storage.registry import get_connector
from generator.storage.uris import parse_storage_uri

logger = logging.getLogger(__name__)


def default_names(generation: Generation) -> tuple[str, str]:
    """Return the default-storage names of the video and the poster."""
    return (
        f"videos/{generation.team.slug}/{generation.uuid}.mp4",
        f"posters/{generation.uuid}.jpg",
    )


KEPT_INPUTS_FOLDER = "inputs"


def kept_input_name(generation: Generation) -> str:
    """Return the default-storage name of the validated photo kept for an upstream's hand-over (docs/engines.md)."""
    return f"{KEPT_INPUTS_FOLDER}/{generation.uuid}"


def default_files_delete(*names: str) -> None:
    """Delete files from the default storage, logging (not raising) what cannot be removed."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s from the default storage", name, exc_info=True)


def poster_open(generation: Generation) -> File | None:
    """Open a generation's poster (kept after its video expires), or None when it has none."""
    if not generation.poster_name or not default_storage.exists(generation.poster_name):
        return None
    return default_storage.open(generation.poster_name, "rb")


def output_key(generation: Generation) -> str:
    """Return the storage key the video goes to: a folder output gets <dir>/<uuid>.mp4."""
    key = generation.output_key
    if key.endswith("/"):
        return f"{key}{generation.uuid.hex}.mp4"
    return key


def _generated_output_key(generation: Generation) -> str | None:
    """Return the storage key of a folder output (a name we made up), or None for an exact key.

    While the job runs output_key is the folder ("out/"); once DONE it is the full key.
    """
    if generation.output_storage_id is None:
        return None
    requested = (generation.request or {}).get("output")
    if not requested or not parse_storage_uri(requested).is_folder:
        return None
    key = output_key(generation)
    if not key.endswith(f"/{generation.uuid.hex}.mp4") and key != f"{generation.uuid.hex}.mp4":
        return None
    return key


def folder_output_delete(generation: Generation) -> None:
    """Remove the storage object of a folder output (its file name is ours), if there is one.

    Never an exact key: that object is the customer's (a failed upload may not have replaced
    it, and a later job may have overwritten it).
    """
    key = _generated_output_key(generation)
    if key is None:
        return
    try:
        get_connector(generation.output_storage).delete(key)
    except Exception:
        logger.warning(
            "generation %s: could not remove the output %s",
            generation.pk,
            key,
            exc_info=True,
        )
