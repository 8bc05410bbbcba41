"""Engine connections: /v1/engines CRUD against a loopback Claid stand-in, options.engine, data.engine, prices."""

from __future__ import annotations

import json

import pytest

from generator.crypto import decrypt_json
from generator.models import ApiKey, EngineConnection, Generation
from generator.presenters import generation_to_api
from generator.services.engine_connections import engine_set_default
from tests.factories import make_api_key, make_member, make_team, make_user
from tests.harness import bearer
from tests.loopback import CLAID_KEY as SECRET

PHOTO = "https://shop.example/shoe.jpg"


def _connect(client, key, claid, **overrides):
    body = {
        "name": "claid",
        "type": "claid",
        "credentials": {"api_key": SECRET},
        "parameters": {"base_url": claid.url("")},
        **overrides,
    }
    return client.post("/v1/engines", json.dumps(body), content_type="application/json", **bearer(key))


def test_connecting_claid_tests_the_key_and_never_returns_it(client, key, team, claid):
    response = _connect(client, key, claid)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["name"] == "claid"
    assert data["type"] == "claid"
    assert data["price"] == {"5": 35, "10": 70}
    assert SECRET not in response.content.decode()
    assert [seen.path for seen in claid.requests] == ["/v1/account"]
    engine = EngineConnection.objects.get(team=team)
    assert SECRET not in engine.secrets_encrypted
    assert decrypt_json(engine.secrets_encrypted) == {"api_key": SECRET}
    listing = client.get("/v1/engines", **bearer(key)).json()["data"]
    assert [e["name"] for e in listing] == ["builtin", "claid"]
    assert listing[0]["is_default"] is True
    assert SECRET not in json.dumps(listing)


def test_a_refused_key_is_a_422_with_the_upstreams_reason_and_no_secret(client, key, team, claid):
    response = _connect(client, key, claid, credentials={"api_key": "wrong-key-999"})
    assert response.status_code == 422
    text = response.content.decode()
    assert "invalid API key" in text
    assert "wrong-key-999" not in text
    assert not EngineConnection.objects.exists()


def test_the_name_builtin_is_reserved_and_names_are_unique(client, key, claid):
    assert _connect(client, key, claid, name="builtin").status_code == 422
    assert _connect(client, key, claid).status_code == 201
    again = _connect(client, key, claid)
    assert again.status_code == 422
    assert "already exists" in again.content.decode()


def test_patch_tests_the_new_key_and_delete_disconnects(client, key, team, claid):
    pk = _connect(client, key, claid).json()["data"]["id"]
    bad = client.patch(
        f"/v1/engines/{pk}",
        json.dumps({"credentials": {"api_key": "nope-nope"}}),
        content_type="application/json",
        **bearer(key),
    )
    assert bad.status_code == 422
    assert decrypt_json(EngineConnection.objects.get(pk=pk).secrets_encrypted) == {"api_key": SECRET}
    renamed = client.patch(
        f"/v1/engines/{pk}", json.dumps({"name": "claid-eu"}), content_type="application/json", **bearer(key)
    )
    assert renamed.status_code == 200
    assert renamed.json()["data"]["name"] == "claid-eu"
    assert client.delete(f"/v1/engines/{pk}", **bearer(key)).json() == {"data": {"id": pk}}
    assert not EngineConnection.objects.exists()


def test_another_teams_engine_is_a_404_and_the_scope_is_required(client, key, claid):
    other = make_team("Other", slug="other")
    engine = EngineConnection.objects.create(team=other, name="theirs", type="claid")
    assert client.get(f"/v1/engines/{engine.pk}", **bearer(key)).status_code == 404
    assert client.delete(f"/v1/engines/{engine.pk}", **bearer(key)).status_code == 404
    team_key = make_api_key(other, scopes=[ApiKey.Scope.VIDEO_GENERATION])
    assert client.get("/v1/engines", **bearer(team_key)).status_code == 403


def _generate(client, key, **options):
    body = {"input": PHOTO, "options": {"prompt": "slow zoom", **options}}
    return client.post("/v1/video/generate", json.dumps(body), content_type="application/json", **bearer(key))


def test_an_unknown_engine_is_a_422_naming_options_engine(client, key, unlimited):
    response = _generate(client, key, engine="nowhere")
    assert response.status_code == 422
    assert "options.engine" in response.json()["error_details"]


def test_an_unchanged_claid_script_and_builtin_run_on_the_builtin_engine_at_its_price(client, key, team, unlimited):
    for options in ({}, {"engine": "builtin"}):
        response = _generate(client, key, **options)
        assert response.status_code == 200, response.content
    team.refresh_from_db()
    assert team.balance == 1000 - 2 * 35
    generation = Generation.objects.first()
    assert generation.engine is None
    assert "engine" not in generation_to_api(generation)


def test_a_job_on_an_upstream_engine_holds_the_connections_price(client, key, team, unlimited, claid):
    _connect(client, key, claid)
    EngineConnection.objects.filter(team=team).update(price_10s=90)
    response = _generate(client, key, engine="claid", duration=10)
    assert response.status_code == 200, response.content
    team.refresh_from_db()
    assert team.balance == 1000 - 90
    generation = Generation.objects.get()
    assert generation.engine.name == "claid"
    assert generation_to_api(generation)["engine"] == {"name": "claid", "type": "claid"}


def test_an_option_the_engine_cannot_honour_is_a_422_at_submit(client, key, team, unlimited, claid):
    _connect(client, key, claid)
    response = _generate(client, key, engine="claid", aspect_ratio="9:16")
    assert response.status_code == 422
    message = response.json()["error_details"]["options.aspect_ratio"][0]
    assert "cannot make 9:16" in message


def test_only_owners_and_admins_set_the_default_engine(team, claid):
    engine = EngineConnection.objects.create(team=team, name="claid", type="claid")
    member = make_member(team, make_user("m@example.com")).user
    with pytest.raises(Exception, match="owners and admins"):
        engine_set_default(team=team, user=member, name="claid")
    owner = make_member(team, make_user("o@example.com"), role="owner").user
    engine_set_default(team=team, user=owner, name="claid")
    team.refresh_from_db()
    assert team.default_engine == engine
    engine_set_default(team=team, user=owner, name="builtin")
    team.refresh_from_db()
    assert team.default_engine is None


def test_data_engine_is_answered_from_the_generation(team):
    generation = Generation.objects.create(
        team=team,
        request={"input": PHOTO, "options": {"prompt": "x", "duration": 5, "guidance_scale": 0.5}},
        engine_info={"name": "claid", "type": "claid", "upstream_id": "42"},
    )
    assert generation_to_api(generation)["engine"] == {"name": "claid", "type": "claid", "upstream_id": "42"}


def test_the_openapi_document_has_the_engines_endpoints(client):
    document = client.get("/v1/openapi.json").json()
    assert {"/v1/engines", "/v1/engines/{id}"} <= set(document["paths"])
    assert "engine" in document["components"]["schemas"]["GenerateOptions"]["properties"]


def test_the_jobs_page_shows_an_upstream_jobs_own_stages(client, team):
    owner = make_member(team, make_user("owner@example.com"), role="owner").user
    client.force_login(owner)
    request = {"input": PHOTO, "options": {"prompt": "x", "duration": 5, "guidance_scale": 0.5}}
    Generation.objects.create(team=team, request=request, stage="rendering")
    Generation.objects.create(
        team=team, request=request, stage="waiting", engine_info={"name": "claid", "type": "claid", "upstream_id": "7"}
    )
    html = client.get("/jobs/").content.decode()
    assert html.count('<ol class="stages"') == 2
    assert 'class="current">Waiting for the upstream' in html
    assert 'class="current">Rendering' in html
    builtin, upstream = Generation.objects.order_by("pk")
    assert [value for value, _ in builtin.steps][-3:] == ["rendering", "storing", "done"]
    assert [value for value, _ in upstream.steps][3:] == ["submitting", "waiting", "downloading", "storing", "done"]


def _patch(client, key, pk, body):
    return client.patch(f"/v1/engines/{pk}", json.dumps(body), content_type="application/json", **bearer(key))


def test_patch_is_default_makes_the_engine_the_teams_default_and_false_falls_back_to_builtin(
    client, key, team, claid, unlimited
):
    pk = _connect(client, key, claid).json()["data"]["id"]
    made = _patch(client, key, pk, {"is_default": True})
    assert made.status_code == 200, made.content
    assert made.json()["data"]["is_default"] is True
    team.refresh_from_db()
    assert team.default_engine_id == pk
    listing = {e["name"]: e["is_default"] for e in client.get("/v1/engines", **bearer(key)).json()["data"]}
    assert listing == {"builtin": False, "claid": True}
    assert [seen.path for seen in claid.requests] == ["/v1/account"]  # no new test: nothing of the connection changed

    dropped = _patch(client, key, pk, {"is_default": False})
    assert dropped.json()["data"]["is_default"] is False
    team.refresh_from_db()
    assert team.default_engine_id is None
    listing = {e["name"]: e["is_default"] for e in client.get("/v1/engines", **bearer(key)).json()["data"]}
    assert listing == {"builtin": True, "claid": False}


def test_patch_is_default_false_on_an_engine_that_is_not_the_default_changes_nothing(client, key, team, claid):
    first = _connect(client, key, claid).json()["data"]["id"]
    second = _connect(client, key, claid, name="claid-eu").json()["data"]["id"]
    assert _patch(client, key, first, {"is_default": True}).status_code == 200
    assert _patch(client, key, second, {"is_default": False}).json()["data"]["is_default"] is False
    team.refresh_from_db()
    assert team.default_engine_id == first


def test_patch_is_default_is_for_owners_and_admins_keys_only_and_must_be_a_boolean(client, team, claid):
    owner = make_member(team, make_user(email="owner@example.com"), role="owner").user
    mia = make_member(team, make_user(email="mia@example.com"), role="member").user
    owners_key, members_key = make_api_key(team, user=owner), make_api_key(team, user=mia)
    pk = _connect(client, owners_key, claid).json()["data"]["id"]

    refused = _patch(client, members_key, pk, {"is_default": True, "name": "renamed"})
    assert refused.status_code == 403
    assert "owner or admin" in refused.json()["error_message"]
    team.refresh_from_db()
    assert team.default_engine_id is None
    assert EngineConnection.objects.get(pk=pk).name == "claid"  # refused whole: nothing changed

    wrong = _patch(client, owners_key, pk, {"is_default": "yes"})
    assert wrong.status_code == 422
    assert "is_default" in wrong.json()["error_details"]
    assert _patch(client, owners_key, pk, {"is_default": True}).status_code == 200
    team.refresh_from_db()
    assert team.default_engine_id == pk


def test_patch_is_default_on_another_teams_engine_is_a_404(client, key, team):
    other = make_team("Other", slug="other")
    engine = EngineConnection.objects.create(team=other, name="theirs", type="claid")
    assert _patch(client, key, engine.pk, {"is_default": True}).status_code == 404
    other.refresh_from_db()
    assert other.default_engine_id is None


def test_the_openapi_document_offers_is_default_on_patch(client):
    document = client.get("/v1/openapi.json").json()
    operation = document["paths"]["/v1/engines/{id}"]["patch"]
    assert "403" in operation["responses"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["is_default"]["type"] == "boolean"


def test_only_owners_and_admins_keys_connect_change_or_disconnect_engines_members_keys_list_them(client, team, claid):
    owner = make_member(team, make_user(email="owner@example.com"), role="owner").user
    mia = make_member(team, make_user(email="mia@example.com"), role="member").user
    owners_key, members_key = make_api_key(team, user=owner), make_api_key(team, user=mia)
    pk = _connect(client, owners_key, claid).json()["data"]["id"]
    calls_before = len(claid.requests)

    assert _connect(client, members_key, claid, name="mine").status_code == 403
    assert _patch(client, members_key, pk, {"name": "renamed"}).status_code == 403
    deleted = client.delete(f"/v1/engines/{pk}", **bearer(members_key))
    assert deleted.status_code == 403
    assert "owner or admin" in deleted.json()["error_message"]
    assert len(claid.requests) == calls_before  # refused before any upstream call
    assert list(EngineConnection.objects.filter(team=team).values_list("name", flat=True)) == ["claid"]

    listed = client.get("/v1/engines", **bearer(members_key))
    assert [e["name"] for e in listed.json()["data"]] == ["builtin", "claid"]
    assert client.get(f"/v1/engines/{pk}", **bearer(members_key)).status_code == 200
    assert client.delete(f"/v1/engines/{pk}", **bearer(owners_key)).status_code == 200
