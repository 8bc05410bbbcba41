"""How an upstream engine gets the photo it animates (SPEC 11, docs/engines.md "Handing over the photo").

In this order, the first that applies:
1. an http(s) input: its original URL (it passed the address policy here already);
2. a `storage://` input on an S3 or GCS storage whose endpoint an outside service can reach: a
   presigned GET URL of the object, living an hour;
3. a `data:` URI of the bytes the worker fetched and validated, when the provider takes one that
   large (`Capabilities.data_uri_max_bytes` at least the photo's size);
4. a signed link to this server, `/i/<token>` (an hour, this job's photo only, no login), when
   GENERATOR_PUBLIC_URL is reachable from outside.
When none can apply, a generate request is refused with a 422 that says why (engine_choose), and
a job that learns it only once the photo is fetched (a photo larger than the provider's data:
URI limit) ends ERROR with a refund at submit.

For 3 and 4 the worker keeps the validated photo in the default storage (kept_input_name): the
local MEDIA_ROOT every process of one machine shares, or the temporary bucket
(GENERATOR_TEMP_STORAGE=s3) every machine reaches. A re-submit from a poll task (a rate window,
a 429) finds it there, any web process can serve the /i/ link from it, and it is removed when
the job ends (and by the hourly purge, should that have been missed).
"""

from __future__ import annotations

import base64
import uuid as uuid_module
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from generator.errors import JobFailed
from generator.models import Generation, Storage
from generator.netpolicy import reachable_from_outside
from generator.services.generation_files import KEPT_INPUTS_FOLDER, default_files_delete, kept_input_name
from generator.services.links import LinkFile, LinkInvalid, default_file, public_base_url
from generator.storage.registry import get_connector
from generator.storage.uris import StorageUri, parse_storage_uri
from generator.upstream.base import Capabilities

HANDOVER_TTL_S = 3600
INPUT_LINK_SALT = "generator.input-links"
PRESIGNING_TYPES = ("s3", "gcs")
STORAGE_SCHEME = "storage://"

Status = Generation.Status


def _presignable(storage: Storage) -> bool:
    """True for an S3/GCS storage whose endpoint (the provider's own when unset) an upstream can reach."""
    if storage.type not in PRESIGNING_TYPES:
        return False
    endpoint = (storage.parameters or {}).get("endpoint_url")
    return not endpoint or reachable_from_outside(endpoint, allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS)


def _input_storage(team_id: int, source: str) -> tuple[Storage | None, StorageUri]:
    parsed = parse_storage_uri(source)
    return Storage.objects.filter(team_id=team_id, name=parsed.name).first(), parsed


def handover_refusal(*, team_id: int, source: str, caps: Capabilities, engine_name: str) -> str:
    """Say why no hand-over can work for this input on this engine, as far as it is known before fetching; "" if one may."""
    if not source.startswith(STORAGE_SCHEME):
        return ""
    storage, _parsed = _input_storage(team_id, source)
    if storage is None or _presignable(storage) or caps.data_uri_max_bytes > 0 or public_base_url() is not None:
        return ""
    return (
        f"the engine {engine_name!r} cannot be handed this photo: the storage {storage.name!r} ({storage.type}) "
        "gives no presigned URL an upstream can reach, the engine takes no data: URI, and this server's "
        f"GENERATOR_PUBLIC_URL ({settings.GENERATOR_PUBLIC_URL}) is not reachable from outside for a signed /i/ "
        "link; use an http(s) URL of the photo, an S3 or GCS storage, or the 'builtin' engine"
    )


def input_keep(generation: Generation, data: bytes) -> None:
    """Keep the validated photo where every process finds it, when the hand-over may need its bytes (3 or 4)."""
    source = generation.request["input"]
    if not source.startswith(STORAGE_SCHEME):
        return
    storage, _parsed = _input_storage(generation.team_id, source)
    if storage is not None and _presignable(storage):
        return
    name = kept_input_name(generation)
    # FileSystemStorage renames on collision; a retried attempt must land on the same name.
    default_files_delete(name)
    default_storage.save(name, ContentFile(data))


def input_forget(generation: Generation) -> None:
    """Remove the kept photo once the job has ended (done, failed or cancelled)."""
    default_files_delete(kept_input_name(generation))


def kept_inputs_purge() -> int:
    """Remove kept photos whose job is no longer running (a lost cancel task, a crash); return how many."""
    try:
        _folders, names = default_storage.listdir(KEPT_INPUTS_FOLDER)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    kept: dict[uuid_module.UUID, str] = {}
    for name in names:
        try:
            kept[uuid_module.UUID(name)] = name
        except ValueError:
            continue  # not a name this service wrote
    running = set(
        Generation.objects.filter(uuid__in=list(kept), status=Status.PROCESSING).values_list("uuid", flat=True)
    )
    stale = [f"{KEPT_INPUTS_FOLDER}/{name}" for key, name in kept.items() if key not in running]
    default_files_delete(*stale)
    return len(stale)


def handover_image_url(generation: Generation, caps: Capabilities) -> str:
    """Return what the upstream gets as the image (an http(s) URL or a data: URI); JobFailed saying why if nothing fits."""
    source = generation.request["input"]
    if not source.startswith(STORAGE_SCHEME):
        return source
    storage, parsed = _input_storage(generation.team_id, source)
    if storage is None:
        raise JobFailed(f"the input storage {parsed.name!r} no longer exists")
    if _presignable(storage):
        url = get_connector(storage).download_url(parsed.key, expires_s=HANDOVER_TTL_S)
        if url:
            return url
    name = kept_input_name(generation)
    if not default_storage.exists(name):
        raise JobFailed("the validated photo is no longer kept here, so it cannot be handed to the upstream")
    size = default_storage.size(name)
    if 0 < size <= caps.data_uri_max_bytes:
        with default_storage.open(name, "rb") as handle:
            encoded = base64.b64encode(handle.read()).decode("ascii")
        return f"data:{generation.input_object.get('mime') or 'application/octet-stream'};base64,{encoded}"
    base = public_base_url()
    if base is not None:
        return base + reverse("input-link", kwargs={"token": input_link_token(generation)})
    limit = f"at most {caps.data_uri_max_bytes} bytes" if caps.data_uri_max_bytes else "none"
    raise JobFailed(
        f"the photo ({size} bytes) cannot be handed to the upstream: the engine's data: URI limit is {limit}, "
        f"and this server's GENERATOR_PUBLIC_URL ({settings.GENERATOR_PUBLIC_URL}) is not reachable from outside "
        "for a signed /i/ link"
    )


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=INPUT_LINK_SALT)


def input_link_token(generation: Generation) -> str:
    """Sign the job's uuid: the token opens this job's kept photo only, for HANDOVER_TTL_S."""
    return _signer().sign(str(generation.uuid))


def input_link_file(token: str) -> LinkFile:
    """Find the kept photo a /i/ token names; LinkInvalid (404) when the token is bad or old, or the job has ended."""
    try:
        parsed = uuid_module.UUID(_signer().unsign(token, max_age=timedelta(seconds=HANDOVER_TTL_S)))
    except (signing.BadSignature, ValueError):
        raise LinkInvalid from None
    generation = Generation.objects.filter(uuid=parsed, status=Status.PROCESSING).first()
    name = kept_input_name(generation) if generation is not None else ""
    if generation is None or not default_storage.exists(name):
        raise LinkInvalid
    mime = generation.input_object.get("mime") or "application/octet-stream"
    ext = generation.input_object.get("ext") or "bin"
    return default_file(name, content_type=mime, filename=f"{generation.uuid}.{ext}")
