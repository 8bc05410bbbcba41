"""rotate_secrets [--generate-key] [--dry-run]: re-encrypt storage secrets with the newest key."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.core.management.base import CommandError
from django.db import transaction

from generator.crypto import rotate
from generator.models import Storage

from ._base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Re-encrypt every storage's secrets with the first key of GENERATOR_ENCRYPTION_KEYS. "
        "Rotation: put a new key (--generate-key) first in the list, keep the old ones after it, "
        "restart web and workers, run this command, then remove the old keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true", help="print a new Fernet key and exit")
        parser.add_argument("--dry-run", action="store_true", help="check every token decrypts; change nothing")

    def handle(self, *args, generate_key: bool, dry_run: bool, **options):
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        rotated, failed = 0, []
        for pk in Storage.objects.exclude(secrets_encrypted="").order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                storage = Storage.objects.select_for_update().get(pk=pk)
                try:
                    token = rotate(storage.secrets_encrypted)
                except InvalidToken:  # no configured key opens it
                    failed.append(pk)
                    continue
                if not dry_run:
                    Storage.objects.filter(pk=pk).update(secrets_encrypted=token)
                rotated += 1
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{verb} {rotated} storage secret(s)")
        if failed:
            raise CommandError(
                f"{len(failed)} storage(s) cannot be decrypted with GENERATOR_ENCRYPTION_KEYS: ids {', '.join(map(str, failed))}"
            )
