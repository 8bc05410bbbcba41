"""The Engines page against a loopback Claid stand-in: connect through the form, test, default, disconnect, roles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generator.crypto import decrypt_json, encrypt_json
from generator.models import Batch, EngineConnection, Generation, Membership
from generator.services.batches import batch_create
from generator.services.billing import credits_hold, credits_refund, team_lock
from generator.services.engine_connections import engine_types
from tests.factories import make_member, make_team, make_user
from tests.loopback import CLAID_KEY
from tests.test_views import form_data, make_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, team):
    client.force_login(make_member(team, make_user(), role=Membership.Role.OWNER).user)
    return client


def _form(claid, **overrides) -> dict:
    return {"name": "claid", "type": "claid", "api_key": CLAID_KEY, "base_url": claid.url("").rstrip("/"), **overrides}


def _saved(team, claid, name="claid") -> EngineConnection:
    return EngineConnection.objects.create(
        team=team,
        name=name,
        type="claid",
        parameters={"base_url": claid.url("").rstrip("/")},
        secrets_encrypted=encrypt_json({"api_key": CLAID_KEY}),
    )


def test_an_owner_connects_claid_through_the_form_and_the_key_is_never_shown(owner_client, team, claid):
    response = owner_client.post(reverse("generator:engine-connect"), _form(claid))
    assert response.status_code == 302
    engine = EngineConnection.objects.get(team=team, name="claid")
    assert decrypt_json(engine.secrets_encrypted) == {"api_key": CLAID_KEY}
    assert [seen.path for seen in claid.requests] == ["/v1/account"]
    page = owner_client.get(reverse("generator:engines")).content.decode()
    assert "Connected claid." in page
    assert CLAID_KEY not in page
    assert 'id="engine-builtin"' in page
    assert 'id="engine-claid"' in page
    assert '5 s: 35</span> · <span class="nowrap">10 s: 70' in page  # the connection's default price


def test_a_refused_key_comes_back_on_the_form_with_the_upstreams_reason_kept_once_and_nothing_saved(
    owner_client, team, claid
):
    response = owner_client.post(reverse("generator:engine-connect"), _form(claid, api_key="wrong-key-999"))
    assert response.status_code == 302
    assert not EngineConnection.objects.exists()
    page = owner_client.get(reverse("generator:engines"))
    text = page.content.decode()
    assert "We could not connect with these details. The engine answered:" in text
    assert "invalid API key" in text
    assert page["Cache-Control"] == "no-store"  # the typed key is in the form once
    assert 'value="wrong-key-999"' in text
    again = owner_client.get(reverse("generator:engines")).content.decode()
    assert "wrong-key-999" not in again  # shown once, then forgotten
    assert 'value="claid"' in again  # the rest of what was typed stays


def test_a_bad_name_and_a_base_url_outside_the_policy_are_named_on_their_fields(owner_client, claid):
    owner_client.post(
        reverse("generator:engine-connect"), _form(claid, name="builtin", base_url="http://10.0.0.5/claid")
    )
    text = owner_client.get(reverse("generator:engines")).content.decode()
    assert "There are 2 problems" in text
    assert "builtin" in text
    assert "built-in engine" in text
    assert 'id="id_base_url_error"' in text
    assert not EngineConnection.objects.exists()
    assert claid.requests == []  # refused before any call upstream


def test_test_shows_the_upstreams_reason_with_htmx_and_without(owner_client, team, claid):
    engine = _saved(team, claid)
    url = reverse("generator:engine-test", args=[engine.pk])
    works = owner_client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Connection works" in works
    engine.secrets_encrypted = encrypt_json({"api_key": "revoked-key-1"})
    engine.save()
    failed = owner_client.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "The connection test failed" in failed
    assert "invalid API key" in failed
    assert "revoked-key-1" not in failed
    no_js = owner_client.post(url)
    assert no_js.status_code == 302
    assert no_js["Location"].endswith(f"#test-{engine.pk}")
    page = owner_client.get(reverse("generator:engines")).content.decode()
    assert f'id="test-{engine.pk}" class="check-result"' in page
    assert "invalid API key" in page


def test_make_default_and_back_to_builtin(owner_client, team, claid):
    engine = _saved(team, claid)
    owner_client.post(reverse("generator:engine-default"), {"engine": "claid"})
    team.refresh_from_db()
    assert team.default_engine_id == engine.pk
    page = owner_client.get(reverse("generator:engines")).content.decode()
    assert "claid is now the team&#x27;s default engine." in page
    owner_client.post(reverse("generator:engine-default"), {"engine": "builtin"})
    team.refresh_from_db()
    assert team.default_engine_id is None
    owner_client.post(reverse("generator:engine-default"), {"engine": "nowhere"})
    assert "no engine named" in owner_client.get(reverse("generator:engines")).content.decode()


def test_disconnecting_the_default_says_builtin_is_the_default_again(owner_client, team, claid):
    engine = _saved(team, claid)
    team.default_engine = engine
    team.save()
    response = owner_client.post(reverse("generator:engine-disconnect", args=[engine.pk]))
    assert response.status_code == 302
    assert not EngineConnection.objects.exists()
    team.refresh_from_db()
    assert team.default_engine_id is None
    assert "default is builtin again" in owner_client.get(reverse("generator:engines")).content.decode()


def test_a_member_sees_the_list_read_only_and_cannot_manage(member_client, team, claid):
    engine = _saved(team, claid)
    page = member_client.get(reverse("generator:engines")).content.decode()
    assert 'id="engine-claid"' in page
    assert "Only owners and admins can connect" in page
    assert reverse("generator:engine-connect") not in page
    assert reverse("generator:engine-disconnect", args=[engine.pk]) not in page
    assert member_client.post(reverse("generator:engine-connect"), _form(claid, name="mine")).status_code == 403
    assert member_client.post(reverse("generator:engine-test", args=[engine.pk])).status_code == 403
    assert member_client.post(reverse("generator:engine-default"), {"engine": "claid"}).status_code == 403
    assert member_client.post(reverse("generator:engine-disconnect", args=[engine.pk])).status_code == 403
    team.refresh_from_db()
    assert team.default_engine_id is None
    assert list(EngineConnection.objects.values_list("name", flat=True)) == ["claid"]
    assert claid.requests == []


def test_another_teams_connection_is_a_404_and_stays(owner_client, claid):
    other = make_team("Other", slug="other")
    theirs = _saved(other, claid, name="theirs")
    assert owner_client.post(reverse("generator:engine-test", args=[theirs.pk])).status_code == 404
    assert owner_client.post(reverse("generator:engine-disconnect", args=[theirs.pk])).status_code == 404
    owner_client.post(reverse("generator:engine-default"), {"engine": "theirs"})
    other.refresh_from_db()
    assert other.default_engine_id is None
    assert EngineConnection.objects.filter(pk=theirs.pk).exists()
    assert "theirs" not in owner_client.get(reverse("generator:engines")).content.decode().split("<h1>")[1]


# --- Generate: the engine picker ---------------------------------------------------------------------


def test_generate_offers_every_engine_with_price_and_durations_and_preselects_the_default(member_client, team, claid):
    engine = _saved(team, claid)
    engine.price_5s, engine.price_10s = 50, 90
    engine.save()
    page = member_client.get(reverse("generator:home")).content.decode()
    assert 'data-price-5="35" data-price-10="70" data-durations="5,10" data-shapes=""' in page
    assert 'data-price-5="50" data-price-10="90" data-durations="5,10" data-shapes="source"' in page
    assert (
        'value="builtin" id="id_engine_0" data-price-5="35" data-price-10="70" data-durations="5,10" data-shapes="" checked'
        in page
    )
    assert "Costs <strong data-cost>35</strong>" in page

    team.default_engine = engine
    team.save()
    page = member_client.get(reverse("generator:home")).content.decode()
    assert (
        'value="claid" id="id_engine_1" data-price-5="50" data-price-10="90" data-durations="5,10" data-shapes="source" checked'
        in page
    )
    assert "Costs <strong data-cost>50</strong>" in page  # the cost follows the chosen engine
    assert 'data-price="90"' in page  # and so does the 10 s card's price


def test_generate_without_connections_shows_no_picker(member_client):
    assert 'name="engine"' not in member_client.get(reverse("generator:home")).content.decode()


def test_a_job_sent_on_an_engine_runs_there_at_its_price(member_client, team, claid, unlimited):
    engine = _saved(team, claid)
    engine.price_5s = 50
    engine.save()
    response = member_client.post(reverse("generator:generate"), form_data(engine="claid"))
    assert response.status_code == 302
    generation = Generation.objects.get(team=team)
    assert generation.engine_id == engine.pk
    assert generation.cost == 50
    assert generation.request["options"]["engine"] == "claid"


def test_a_shape_the_engine_cannot_make_is_shown_on_the_shape_field_and_nothing_is_charged(
    member_client, team, claid, unlimited
):
    _saved(team, claid)
    balance = team.balance
    member_client.post(reverse("generator:generate"), form_data(engine="claid", aspect_ratio="9:16"))
    assert not Generation.objects.exists()
    team.refresh_from_db()
    assert team.balance == balance
    page = member_client.get(reverse("generator:home")).content.decode()
    assert "There is a problem" in page
    error = page.split('id="id_aspect_ratio_error"')[1].split("</")[0]
    assert "cannot make 9:16" in error
    assert 'value="claid" id="id_engine_1"' in page
    assert page.split('value="claid" id="id_engine_1"')[1].split(">")[0].endswith("checked")  # still chosen


def test_an_engine_that_vanished_before_the_form_was_sent_is_named_on_the_engine_field(member_client, unlimited):
    member_client.post(reverse("generator:generate"), form_data(engine="gone"))
    page = member_client.get(reverse("generator:home")).content.decode()
    assert "No engine named &#x27;gone&#x27; in this team." in page
    assert not Generation.objects.exists()


def test_a_batch_costs_its_engines_price_per_item(team, claid, unlimited):
    engine = _saved(team, claid)
    engine.price_5s = 50
    engine.save()
    body = {"inputs": ["https://shop.example/a.jpg", "https://shop.example/b.jpg"], "options": {"prompt": "steam"}}
    on_builtin = batch_create(team=team, body=body)
    on_claid = batch_create(team=team, body={**body, "options": {"prompt": "steam", "engine": "claid"}})
    team.default_engine = engine
    team.save()
    on_default = batch_create(team=team, body=body)
    costs = dict(Batch.objects.values_list("pk", "cost_per_item"))
    assert [costs[b.pk] for b in (on_builtin, on_claid, on_default)] == [35, 50, 50]


# --- the job page: where it is made, and the upstream's progress ---------------------------------------


def test_the_job_page_names_the_engine_and_upstream_id_and_shows_the_upstreams_progress_as_it_polls(
    member_client, team, claid
):
    engine = _saved(team, claid)
    waiting = make_generation(
        team,
        status=Generation.Status.PROCESSING,
        stage=Generation.Stage.WAITING,
        engine=engine,
        engine_info={"name": "claid", "type": "claid", "model": "klingv2", "upstream_id": "up7781"},
        upstream_state={
            "submitted_at": (timezone.now() - timedelta(seconds=75)).isoformat(),
            "detail": {"state": "IN_QUEUE", "queue_position": 3},
        },
    )
    url = reverse("generator:job-detail", args=[waiting.uuid])
    page = member_client.get(url).content.decode()
    assert "claid · Claid.ai · " in page.split('id="job-engine"')[1].split("</td>")[0]
    assert "klingv2" in page.split('id="job-engine"')[1].split("</td>")[0]
    assert "up7781" in page.split('id="job-upstream-id"')[1].split("</td>")[0]
    progress = page.split(f'id="upstream-{waiting.uuid}"')[1].split("</div>")[0]
    assert "On claid: in queue · queue position 3 · 1 min 1" in progress
    assert "since it was sent" in progress

    # The poller's next look: the row the page polls for says so.
    Generation.objects.filter(pk=waiting.pk).update(
        upstream_state={**waiting.upstream_state, "detail": {"state": "IN_PROGRESS", "started": True, "percent": 42.4}}
    )
    row = member_client.get(url, HTTP_HX_REQUEST="true")
    assert row.status_code == 200  # still active: the page keeps polling
    progress = row.content.decode().split(f'id="upstream-{waiting.uuid}"')[1].split("</div>")[0]
    assert "in progress · started · 42% · 1 min" in progress


def test_a_builtin_job_page_says_builtin_and_no_upstream(member_client, team):
    job = make_generation(team)
    page = member_client.get(reverse("generator:job-detail", args=[job.uuid])).content.decode()
    assert "builtin · Built-in motion engine" in page
    assert "job-upstream-id" not in page
    assert "data-upstream" not in page


# --- the gallery's engine filter and the credits page's spend by engine -----------------------------


def _made_on(team, engine: EngineConnection | None, *, cost: int, refunded: bool = False) -> Generation:
    info = {"name": engine.name, "type": engine.type} if engine else {}
    job = make_generation(team, engine=engine, engine_info=info)
    Generation.objects.filter(pk=job.pk).update(cost=cost)
    job.cost = cost
    credits_hold(team=team_lock(team.pk), generation=job)
    if refunded:
        credits_refund(generation=job, reason="failed upstream")
    return job


def test_the_gallery_filters_by_engine_including_a_disconnected_one(member_client, team, claid):
    claid_engine, other = _saved(team, claid), _saved(team, claid, name="claid-eu")
    on_builtin = make_generation(team)
    on_claid = make_generation(team, engine=claid_engine, engine_info={"name": "claid", "type": "claid"})
    on_other = make_generation(team, engine=other, engine_info={"name": "claid-eu", "type": "claid"})
    other.delete()  # disconnected: its videos keep engine_info

    def shown(query: dict) -> set:
        html = member_client.get(reverse("generator:gallery"), query).content.decode()
        return {job for job in (on_builtin, on_claid, on_other) if f'id="video-{job.uuid}"' in html}

    page = member_client.get(reverse("generator:gallery")).content.decode()
    assert '<select id="f-engine" name="engine">' in page
    assert '<option value="claid-eu" >claid-eu</option>' in page
    assert shown({}) == {on_builtin, on_claid, on_other}
    assert shown({"engine": "builtin"}) == {on_builtin}
    assert shown({"engine": "claid"}) == {on_claid}
    assert shown({"engine": "claid-eu"}) == {on_other}
    assert shown({"engine": "nowhere"}) == {on_builtin, on_claid, on_other}  # an unknown name filters nothing
    fragment = member_client.get(reverse("generator:gallery"), {"engine": "claid"}, HTTP_HX_REQUEST="true")
    assert "<html" not in fragment.content.decode()
    assert f'id="video-{on_claid.uuid}"' in fragment.content.decode()


def test_another_teams_engine_names_are_not_offered_in_the_gallery(member_client, claid):
    other = make_team("Other", slug="other")
    make_generation(other, engine_info={"name": "secret-engine", "type": "claid"})
    _saved(other, claid, name="theirs")
    page = member_client.get(reverse("generator:gallery")).content.decode()
    assert "secret-engine" not in page
    assert "theirs" not in page


def test_the_credits_page_shows_this_months_spend_by_engine_refunds_taken_off(member_client, team, claid):
    engine = _saved(team, claid)
    _made_on(team, None, cost=35)
    _made_on(team, engine, cost=50)
    _made_on(team, engine, cost=50)
    _made_on(team, engine, cost=50, refunded=True)
    page = member_client.get(reverse("generator:credits")).content.decode()
    table = page.split('id="by-engine"')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tbody>")[1].split("</tr>")[:-1]]
    assert rows == [["claid", "2", "100"], ["builtin", "1", "35"]]


def test_the_connect_form_offers_every_type_and_shipped_model_the_registry_has(owner_client):
    page = owner_client.get(reverse("generator:engines")).content.decode()
    for kind in engine_types():
        assert f'<option value="{kind.type}"' in page
        for name in kind.templates or {}:
            assert '<datalist id="engine-models">' in page
            assert f'<option value="{name}" label="{kind.label} · ' in page.split('<datalist id="engine-models">')[1]
    assert 'data-when="type=fal|replicate"' in page  # the model field: only the types that take one


def test_a_replicate_model_picked_from_its_templates_connects_and_a_claid_connection_sends_no_model(
    owner_client, team, claid
):
    model = next(iter(next(t for t in engine_types() if t.type == "replicate").templates or {}))
    owner_client.post(reverse("generator:engine-connect"), _form(claid, name="rep", type="replicate", model=model))
    assert EngineConnection.objects.get(name="rep").parameters["model"] == model
    owner_client.post(reverse("generator:engine-connect"), _form(claid, name="cl", model=model))  # left in the field
    assert "model" not in EngineConnection.objects.get(name="cl").parameters
    owner_client.post(reverse("generator:engine-connect"), _form(claid, name="rep2", type="replicate"))
    page = owner_client.get(reverse("generator:engines")).content.decode()
    assert "Model is required for a replicate connection." in page.split('id="id_model_error"')[1].split("</")[0]
    assert not EngineConnection.objects.filter(name="rep2").exists()


def test_make_again_quotes_the_price_of_the_engine_the_retry_runs_on(member_client, team, claid):
    engine = _saved(team, claid)
    engine.price_5s = 50
    engine.save()
    named = make_generation(team, engine=engine, engine_info={"name": "claid", "type": "claid"})
    Generation.objects.filter(pk=named.pk).update(
        request={**named.request, "options": {**named.request["options"], "engine": "claid"}}
    )
    unnamed = make_generation(team)
    html = member_client.get(reverse("generator:jobs")).content.decode()
    assert "Make again (50 credits)" in html.split(f'id="job-{named.uuid}"')[1].split('class="job"')[0]
    assert "Make again (35 credits)" in html.split(f'id="job-{unnamed.uuid}"')[1].split('class="job"')[0]
    team.default_engine = engine
    team.save()
    html = member_client.get(reverse("generator:jobs")).content.decode()
    assert "Make again (50 credits)" in html.split(f'id="job-{unnamed.uuid}"')[1].split('class="job"')[0]
