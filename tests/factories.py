"""Plain factory functions for tests."""

from __future__ import annotations

import itertools
import struct
import zlib

from generator.models import Membership, Team, User
from generator.services.apikeys import apikey_create
from generator.services.billing import credits_grant

_counter = itertools.count(1)
# What the worker reports about tests/fixtures/chelsea.png (451 x 300 px).
CHELSEA_INPUT = {"ext": "png", "mps": 0.14, "mime": "image/png", "format": "png", "width": 451, "height": 300}
PASSWORD = "correct-horse-battery-staple"
# The options of the Generate form (single and batch) as a browser posts them: a text prompt, 5 s, a temporary link.
FORM_OPTIONS = {
    "prompt_mode": "text",
    "prompt": "slow zoom in, light sweep",
    "duration": "5",
    "guidance_scale": "0.5",
    "output_mode": "temporary",
}


def make_user(email: str | None = None, *, password: str = PASSWORD, **extra) -> User:
    email = email or f"user{next(_counter)}@example.com"
    return User.objects.create_user(email=email, password=password, **extra)


def make_team(name: str | None = None, *, credits: int = 1000, **fields) -> Team:
    n = next(_counter)
    name = name or f"Team {n}"
    team = Team.objects.create(name=name, slug=fields.pop("slug", f"team-{n}"), **fields)
    if credits:
        credits_grant(team=team, amount=credits, reason="test setup")
        team.refresh_from_db()
    return team


def make_member(team: Team, user: User | None = None, *, role: str = Membership.Role.MEMBER, **fields) -> Membership:
    return Membership.objects.create(team=team, user=user or make_user(), role=role, **fields)


def make_api_key(team: Team, *, user: User | None = None, scopes: list[str] | None = None, name: str = "test") -> str:
    _key, raw = apikey_create(team=team, created_by=user, name=name, scopes=scopes)
    return raw


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a token IDAT: a decompression bomb's header (about 70 bytes)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


# Adobe RGB (1998) as an ICC profile would state it: its primaries adapted to D50 and its gamma.
ADOBE_RGB_PRIMARIES = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))


def matrix_icc_profile(
    description: str = "Adobe RGB (1998) test profile",
    primaries: tuple[tuple[float, float, float], ...] = ADOBE_RGB_PRIMARIES,
    gamma: float = 563 / 256,
) -> bytes:
    """A version 2 RGB display ICC profile of the matrix/TRC kind (what cameras and editors embed).

    Written out per the ICC.1:2001-04 layout: a 128-byte header, the tag table, then the tags
    (description, white point, the three primaries as XYZ columns, one gamma curve per channel).
    """

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    text = description.encode("ascii") + b"\0"
    desc = (
        b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 4 + b"\0" * 4 + b"\0" * 2 + b"\0" + b"\0" * 67
    )
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    d50 = (0.9642, 1.0, 0.8249)
    tags = [(b"desc", desc), (b"wtpt", xyz(*d50))]
    tags += [(name, xyz(*p)) for name, p in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries, strict=True)]
    tags += [(name, curve) for name in (b"rTRC", b"gTRC", b"bTRC")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for name, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += name + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12  # date and time
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + s15(d50[0])
        + s15(d50[1])
        + s15(d50[2])
        + b"\0" * 48  # creator, profile ID, reserved
    )
    assert len(header) == 128
    return header + table + body
