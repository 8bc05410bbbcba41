"""Storage secrets: encrypted at rest, rotated by command, absent from pages, admin, logs and errors."""

from __future__ import annotations

import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from generator.crypto import decrypt_json, encrypt_json
from generator.models import Membership, Storage
from generator.services.storage_connections import storage_check, storage_create
from generator.storage.registry import get_connector
from tests.factories import make_api_key, make_member, make_team, make_user
from tests.storage_servers import free_closed_port

pytestmark = pytest.mark.django_db
SECRET = "zzTopSecretValue/0123456789abcdefABCDEF42"


def _s3_params(server, bucket, secret=None) -> dict:
    return {
        "bucket": bucket,
        "path": "media",
        "endpoint_url": server.endpoint_url,
        "credentials": {"access_key": server.access_key, "secret_access_key": secret or server.secret_key},
    }


def test_rotate_secrets_moves_tokens_to_the_newest_key(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.GENERATOR_ENCRYPTION_KEYS = [old]
    team = make_team()
    storage = Storage.objects.create(
        team=team,
        name="s",
        type="s3",
        parameters={"bucket": "b"},
        secrets_encrypted=encrypt_json({"secret_access_key": SECRET}),
    )
    settings.GENERATOR_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets")
    assert "re-encrypted 1 storage secret(s)" in capsys.readouterr().out
    settings.GENERATOR_ENCRYPTION_KEYS = [new]
    storage.refresh_from_db()
    assert decrypt_json(storage.secrets_encrypted) == {"secret_access_key": SECRET}
    assert SECRET not in storage.secrets_encrypted


def test_tokens_from_the_secret_key_fallback_still_open_after_keys_are_configured(settings):
    settings.GENERATOR_ENCRYPTION_KEYS = []
    token = encrypt_json({"secret_access_key": SECRET})
    settings.GENERATOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert decrypt_json(token) == {"secret_access_key": SECRET}


def test_rotate_secrets_fails_loudly_on_a_token_no_key_opens(settings):
    settings.GENERATOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    team = make_team()
    token = encrypt_json({"secret_access_key": SECRET})
    storage = Storage.objects.create(team=team, name="s", type="s3", parameters={}, secrets_encrypted=token)
    settings.GENERATOR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    with pytest.raises(CommandError, match=f"ids {storage.pk}"):
        call_command("rotate_secrets")
    storage.refresh_from_db()
    assert storage.secrets_encrypted == token


def test_generate_key_prints_a_usable_fernet_key(capsys):
    call_command("rotate_secrets", "--generate-key")
    Fernet(capsys.readouterr().out.strip().encode())


def test_secrets_absent_from_admin_and_dashboard_pages(client, settings, s3_server, s3_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]
    team = make_team(slug="acme")
    storage = storage_create(team=team, user=None, name="shop", type="s3", parameters=_s3_params(s3_server, s3_bucket))
    staff = make_user(is_staff=True, is_superuser=True)
    make_member(team, staff, role=Membership.Role.OWNER)
    client.force_login(staff)
    pages = [
        "/admin/generator/storage/",
        f"/admin/generator/storage/{storage.pk}/change/",
        "/storages/",
        f"/storages/{storage.pk}/browse",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert s3_server.secret_key.encode() not in response.content, url
        assert storage.secrets_encrypted.encode() not in response.content, url


def test_secrets_absent_from_logs_and_check_reports(caplog, settings, s3_server, s3_bucket):
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port]
    team = make_team(slug="acme")
    with caplog.at_level(logging.DEBUG):
        storage = storage_create(
            team=team, user=None, name="shop", type="s3", parameters=_s3_params(s3_server, s3_bucket)
        )
        connector = get_connector(storage)
        connector.write_bytes("a.txt", b"x")
        connector.read("a.txt", max_bytes=10)
        report = storage_check(storage=storage)
    assert report.ok
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # botocore really logged at DEBUG
    assert s3_server.secret_key not in logged


def test_failing_check_messages_never_contain_the_secret(client, settings, s3_server, s3_bucket):
    port = free_closed_port()
    settings.GENERATOR_FETCH_ALLOW_HOSTS = [s3_server.host_port, f"127.0.0.1:{port}"]
    key = make_api_key(make_team(), scopes=["storage"])
    bodies = []
    for params in (
        _s3_params(s3_server, s3_bucket, secret=SECRET),
        {**_s3_params(s3_server, s3_bucket, secret=SECRET), "endpoint_url": f"http://127.0.0.1:{port}"},
        {**_s3_params(s3_server, "missing-bucket", secret=SECRET)},
        {**_s3_params(s3_server, s3_bucket, secret=SECRET), "bucket": "Bad_Bucket!"},
    ):
        response = client.post(
            "/v1/storage/storages",
            data=json.dumps({"name": "shop", "type": "s3", "parameters": params}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        assert response.status_code == 422
        bodies.append(response.content)
    for body in bodies:
        assert SECRET.encode() not in body


def test_rotate_secrets_also_moves_webhook_secrets_to_the_newest_key(settings, capsys):
    from generator.services.webhooks import webhook_configure, webhook_secret

    old = Fernet.generate_key().decode()
    settings.GENERATOR_ENCRYPTION_KEYS = [old]
    team = make_team()
    secret = webhook_configure(team=team, url="https://hooks.example.com/a")
    new = Fernet.generate_key().decode()
    settings.GENERATOR_ENCRYPTION_KEYS = [new, old]

    call_command("rotate_secrets")

    assert "re-encrypted 1 webhook secret(s)" in capsys.readouterr().out
    settings.GENERATOR_ENCRYPTION_KEYS = [new]
    team.refresh_from_db()
    assert Fernet(new.encode()).decrypt(team.webhook_secret_encrypted.encode()).decode() == f'{{"secret": "{secret}"}}'
    assert webhook_secret(team) == secret
