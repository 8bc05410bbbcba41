"""A batch's results as downloads: results.csv and archive.zip, streamed page by page (docs/batches.md).

Neither is ever built in memory: items are read in keyset pages, the CSV is written a page at a
time, and the ZIP is written by zipfile straight into the response stream (entries are stored,
not compressed: MP4 does not shrink), one video at a time.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterator

from django.core.files.storage import default_storage

from generator import selectors
from generator.models import Batch, BatchItem
from generator.presenters import batch_item_error, batch_item_link
from generator.services import links
from generator.storage.base import StorageError
from generator.storage.registry import get_connector

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
CHUNK_BYTES = 256 * 1024
# A remote storage's object is read whole (one at a time); a video larger than this is left out.
REMOTE_MAX_BYTES = 512 * 1024 * 1024
CSV_COLUMNS = ("position", "input", "status", "link", "error", "output_name", "generation_id")


def csv_filename(batch: Batch) -> str:
    return f"batch-{batch.pk}-results.csv"


def archive_filename(batch: Batch) -> str:
    return f"batch-{batch.pk}.zip"


def _pages(batch: Batch) -> Iterator[list[BatchItem]]:
    after = 0
    while True:
        page = list(selectors.batch_items(batch=batch, after=after)[:PAGE_SIZE])
        if not page:
            return
        yield page
        after = page[-1].position


def batch_csv_chunks(batch: Batch) -> Iterator[bytes]:
    """Yield results.csv: one row per item, in input order, a page of items per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for page in _pages(batch):
        for item in page:
            writer.writerow(
                (
                    item.position,
                    item.input,
                    item.status,
                    batch_item_link(item) or "",
                    batch_item_error(item) or "",
                    item.output_name,
                    item.generation_id or "",
                )
            )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode()


class _Sink(io.RawIOBase):
    """An unseekable stream that hands what zipfile wrote to the response, chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _video_source(item: BatchItem):
    """Return a readable binary file of the item's video, or raise OSError/StorageError saying why not."""
    generation = item.generation
    if generation is None or not links.link_is_available(generation):
        raise StorageError("the video is no longer available")
    if links.link_is_expired(generation):
        raise StorageError("the temporary video expired (24 hours after it was made)")
    if generation.is_temporary:
        return default_storage.open(generation.video_name, "rb")
    connector = get_connector(generation.output_storage)
    try:
        return connector.open_local(generation.output_key)
    except StorageError:
        return io.BytesIO(connector.read(generation.output_key, max_bytes=REMOTE_MAX_BYTES))


def batch_archive_chunks(batch: Batch) -> Iterator[bytes]:
    """Yield archive.zip: every finished video of the batch as <output_name>, streamed."""
    sink = _Sink()
    left_out: list[str] = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for page in _pages(batch):
            for item in page:
                if item.status != "DONE":
                    continue
                try:
                    source = _video_source(item)
                except (OSError, StorageError) as exc:
                    left_out.append(f"{item.output_name}: {exc}")
                    continue
                with source, archive.open(item.output_name, mode="w", force_zip64=True) as entry:
                    while chunk := source.read(CHUNK_BYTES):
                        entry.write(chunk)
                        yield sink.drain()
                yield sink.drain()
        if left_out:
            archive.writestr("NOT-INCLUDED.txt", "\n".join(left_out) + "\n")
    yield sink.drain()
