"""Encrypt teams' webhook signing secrets at rest, like storage credentials (generator/crypto.py)."""

from django.db import migrations, models

from generator.crypto import decrypt_json, encrypt_json


def encrypt_secrets(apps, schema_editor):
    Team = apps.get_model("generator", "Team")
    for team in Team.objects.exclude(webhook_secret="").only("pk", "webhook_secret"):
        Team.objects.filter(pk=team.pk).update(webhook_secret_encrypted=encrypt_json({"secret": team.webhook_secret}))


def decrypt_secrets(apps, schema_editor):
    Team = apps.get_model("generator", "Team")
    for team in Team.objects.exclude(webhook_secret_encrypted="").only("pk", "webhook_secret_encrypted"):
        secret = decrypt_json(team.webhook_secret_encrypted).get("secret", "")
        Team.objects.filter(pk=team.pk).update(webhook_secret=secret)


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="webhook_secret_encrypted",
            field=models.TextField(
                blank=True,
                editable=False,
                help_text="Fernet token of the webhook signing secret (like storage secrets)",
            ),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
        migrations.RemoveField(model_name="team", name="webhook_secret"),
    ]
