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
