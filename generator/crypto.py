"""Secrets at rest: storage credentials and webhook signing secrets are Fernet tokens under GENERATOR_ENCRYPTION_KEYS.

Keys are a comma list, newest first (MultiFernet): encrypt with the first, decrypt with any, so a
new key can be put in front and old tokens re-encrypted with `rotate_secrets`. Without configured
keys a key is derived from SECRET_KEY (fine for a single development machine); it remains a
decryption fallback after keys are configured, until `rotate_secrets` has run.

Rotation: `manage.py rotate_secrets --generate-key` prints a new key; put it first in
GENERATOR_ENCRYPTION_KEYS (keep the old ones after it), restart web servers and workers, run
`manage.py rotate_secrets`, then drop the old keys from the list.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    derived = Fernet(base64.urlsafe_b64encode(hashlib.sha256(("generator-secrets:" + secret_key).encode()).digest()))
    # The SECRET_KEY-derived key stays last so tokens written before GENERATOR_ENCRYPTION_KEYS was
    # set still decrypt; `rotate_secrets` then moves them to the newest configured key.
    return MultiFernet([*(Fernet(key.encode()) for key in keys), derived])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.GENERATOR_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_json(value: dict) -> str:
    """Encrypt a JSON-serialisable dict into a Fernet token."""
    if not value:
        return ""
    return fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> dict:
    """Decrypt a token made by encrypt_json; an empty token is an empty dict."""
    if not token:
        return {}
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored secrets cannot be decrypted with GENERATOR_ENCRYPTION_KEYS") from None


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key."""
    return fernet().rotate(token.encode()).decode() if token else ""
