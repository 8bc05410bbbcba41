"""rotate_secrets [--generate-key] [--dry-run]: re-encrypt storage and webhook secrets with the newest key."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import CommandError
from django.db import models, transaction

from generator.crypto import rotate
from generator.models import Storage, Team

from ._base import OperatorCommand

# Every model field that holds a Fernet token, with the word the report uses for it.
ENCRYPTED_FIELDS: tuple[tuple[type[models.Model], str, str], ...] = (
    (Storage, "secrets_encrypted", "storage"),
    (Team, "webhook_secret_encrypted", "webhook"),
)


class Command(OperatorCommand):
    help = (
        "Re-encrypt every storage's secrets and every team's webhook secret with the first key of "
        "GENERATOR_ENCRYPTION_KEYS. Rotation: put a new key (--generate-key) first in the list, keep "
        "the old ones after it, restart web and workers, run this command, then remove the old keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true", help="print a new Fernet key and exit")
        parser.add_argument("--dry-run", action="store_true", help="check every token decrypts; change nothing")

    def handle(self, *args, generate_key: bool, dry_run: bool, **options):
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        failures = []
        for model, field, word in ENCRYPTED_FIELDS:
            rotated, failed = _rotate_field(model, field, dry_run=dry_run)
            self.stdout.write(f"{verb} {rotated} {word} secret(s)")
            if failed:
                failures.append(f"{len(failed)} {word} secret(s) (ids {', '.join(map(str, failed))})")
        if failures:
            raise CommandError(f"cannot be decrypted with GENERATOR_ENCRYPTION_KEYS: {'; '.join(failures)}")


def _rotate_field(model: type[models.Model], field: str, *, dry_run: bool) -> tuple[int, list[int]]:
    """Re-encrypt one field on every row, each in its own locked transaction; return (rotated, failed ids)."""
    rotated, failed = 0, []
    manager = model._default_manager
    for pk in manager.exclude(**{field: ""}).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            token = manager.select_for_update().values_list(field, flat=True).get(pk=pk)
            try:
                new_token = rotate(token)
            except InvalidToken:  # no configured key opens it
                failed.append(pk)
                continue
            if not dry_run:
                manager.filter(pk=pk).update(**{field: new_token})
            rotated += 1
    return rotated, failed
