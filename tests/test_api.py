"""The /v1/ API over HTTP: accept, read, list, cancel, account, errors, check order and headers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from generator.models import ApiKey, CreditLedger, Generation, Storage
from tests.factories import make_api_key, make_member, make_team, make_user
from tests.loopback import LOOPBACK_SPELLINGS

URL = "https://shop.example/shoe.jpg"
BODY = {"input": URL, "options": {"prompt": "slow zoom in"}}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
ENVELOPE_KEYS = {"error_code", "error_type", "error_message", "error_details"}


class Api:
    """A test client bound to one key."""

    def __init__(self, client, key: str | None) -> None:
        self.client = client
        self.key = key

    def _headers(self, headers: dict) -> dict:
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        if self.key is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {self.key}"
        return extra

    def post(self, path: str, body=None, *, raw: bytes | str | None = None, **headers):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.generic("POST", path, data, content_type="application/json", **self._headers(headers))

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(path, params or {}, **self._headers(headers))

    def call(self, method: str, path: str, **headers):
        return self.client.generic(method, path, "", **self._headers(headers))


# Every test's team has a local storage named "mine".
pytestmark = pytest.mark.usefixtures("mine_storage")


@pytest.fixture
def api(client, team, member):
    return Api(client, make_api_key(team, user=member.user))


def lift_limits(team) -> None:
    team.rate_per_second = team.rate_per_minute = 1000
    team.save(update_fields=["rate_per_second", "rate_per_minute"])


def balance(team) -> int:
    team.refresh_from_db()
    return team.balance


def assert_envelope(response, status: int, code: str, *, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if status == 429:
        assert set(body) == {"detail"}
        body = body["detail"]
    assert set(body) == ENVELOPE_KEYS
    assert body["error_code"] == code
    assert isinstance(body["error_details"], dict)
    if field is not None:
        assert field in body["error_details"], body
    return body


# --- accept ----------------------------------------------------------------------------------


def test_accepted_post_answers_processing_with_echo_url_and_rate_headers(api, team):
    response = api.post("/v1/video/generate", {"input": URL, "options": {"prompt": "slow zoom in", "duration": "10"}})
    assert response.status_code == 200
    data = response.json()["data"]
    generation = Generation.objects.get()
    assert set(data) == {"id", "status", "result_url", "created_at", "request"}
    assert data["id"] == generation.pk
    assert data["status"] == "PROCESSING"
    assert data["result_url"] == f"http://testserver/v1/video/generate/{generation.pk}"
    assert TIMESTAMP_RE.match(data["created_at"])
    assert data["request"] == {
        "input": URL,
        "options": {"prompt": "slow zoom in", "duration": 10, "guidance_scale": 0.5},
    }
    assert response["RateLimit-Limit"] == "1, 15;w=60, 1;w=1"
    assert response["RateLimit-Remaining"] == "0"
    assert response["RateLimit-Reset"] == "1"
    assert "Retry-After" not in response
    assert balance(team) == 930
    assert generation.api_key == ApiKey.objects.get(team=team)
    assert generation.created_by == generation.api_key.created_by


def test_output_is_echoed_only_when_given(api, team):
    lift_limits(team)
    with_output = api.post("/v1/video/generate", {**BODY, "output": "storage://mine/videos/"}).json()["data"]
    without = api.post("/v1/video/generate", BODY).json()["data"]
    assert with_output["request"]["output"] == "storage://mine/videos/"
    assert "output" not in without["request"]


# --- the bad-input list of issue 2 (submit-time checks) --------------------------------------

BAD_BODIES = [
    ({"input": URL, "options": {"prompt": "ab"}}, "options.prompt"),
    ({"input": URL, "options": {"prompt": "x" * 5001}}, "options.prompt"),
    ({"input": URL, "options": {"prompt": "zoom in", "negative_prompt": "ab"}}, "options.negative_prompt"),
    ({"input": URL, "options": {"prompt": "zoom in", "duration": 7}}, "options.duration"),
    ({"input": URL, "options": {"prompt": "zoom in", "duration": "6"}}, "options.duration"),
    ({"input": URL, "options": {"prompt": "zoom in", "duration": 0}}, "options.duration"),
    ({"input": URL, "options": {"prompt": "zoom in", "guidance_scale": -0.1}}, "options.guidance_scale"),
    ({"input": URL, "options": {"prompt": "zoom in", "guidance_scale": 1.5}}, "options.guidance_scale"),
    ({"input": URL, "options": {"prompt": "zoom in", "fps": 60}}, "options.fps"),
    ({"input": URL, "options": {"prompt": "zoom in"}, "priority": 1}, "priority"),
    ({"input": URL}, "options"),
    ({"options": {"prompt": "zoom in"}}, "input"),
    ({"input": "", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "https://a.example/" + "a" * 495, "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "ftp://shop.example/a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "file:///etc/passwd", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "data:image/png;base64,AAAA", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "gopher://shop.example/", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "https://u:p@shop.example/a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": URL, "options": {"prompt": {"text": "zoom in", "generate": True}}}, "options.prompt"),
    ({"input": URL, "options": {"prompt": {"generate": True, "guidelines": "ab"}}}, "options.prompt.guidelines"),
    ({"input": "storage://nope/a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": URL, "output": "storage://nope/videos/", "options": {"prompt": "zoom in"}}, "output"),
    ({"input": "storage://mine/../a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "storage://mine//etc/a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "storage://mine/%2e%2e/a.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": "storage://mine/a//b.jpg", "options": {"prompt": "zoom in"}}, "input"),
    ({"input": URL, "output": "storage://mine/../v/", "options": {"prompt": "zoom in"}}, "output"),
    ({"input": URL, "output": "storage://mine//abs/v.mp4", "options": {"prompt": "zoom in"}}, "output"),
    ({"input": URL, "output": "storage://mine/%2E%2E/v.mp4", "options": {"prompt": "zoom in"}}, "output"),
    ({"input": URL, "output": "storage://mine/a//v.mp4", "options": {"prompt": "zoom in"}}, "output"),
    ({"input": URL, "output": "storage://mine/v.mov", "options": {"prompt": "zoom in"}}, "output"),
]
for _host in [
    *LOOPBACK_SPELLINGS,
    "10.1.2.3",
    "192.168.0.1",
    "172.16.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "[fe80::1]",
]:
    BAD_BODIES.append(({"input": f"http://{_host}/a.jpg", "options": {"prompt": "zoom in"}}, "input"))


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_422_naming_the_field_and_changes_nothing(api, team, body, field):
    before = balance(team)
    response = api.post("/v1/video/generate", body)
    assert_envelope(response, 422, "9000", field=field)
    assert response.json()["error_type"] == "validation"
    assert Generation.objects.count() == 0
    assert balance(team) == before
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 0
    assert "RateLimit-Limit" in response


def test_another_teams_storage_name_is_422_on_input_and_output(api, team):
    other = make_team()
    Storage.objects.create(team=other, name="theirs", type="local", parameters={"path": ""})
    response = api.post(
        "/v1/video/generate",
        {"input": "storage://theirs/a.jpg", "output": "storage://theirs/v/", "options": {"prompt": "zoom in"}},
    )
    body = assert_envelope(response, 422, "9000")
    assert set(body["error_details"]) == {"input", "output"}
    assert Generation.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b"null",
        b"42",
        b'"a string"',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"input": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_or_non_object_body_is_400(api, team, raw):
    response = api.post("/v1/video/generate", raw=raw)
    body = assert_envelope(response, 400, "1000")
    assert body["error_type"] == "general"
    assert Generation.objects.count() == 0
    assert "RateLimit-Remaining" in response


@pytest.mark.parametrize(
    "body",
    [
        {"input": None, "options": None, "output": None},
        {"input": 1e308, "options": {"prompt": 10**400, "duration": 1e999}},
        {"input": URL, "options": {"prompt": {"text": {"nested": [1, {"deep": None}]}}}},
        {"input": URL, "options": {"prompt": "zoom ✨ in 🎬", "guidance_scale": -0.0}},
        {"input": "https://例え.jp/画像.jpg", "options": {"prompt": "ズームイン"}},
        {"input": URL, "options": {"prompt": "zoom in", "duration": [5]}},
        {"input": {"url": URL}, "options": [], "output": {"storage": "x"}},
        {"\u0000": 1, "input": "\u0000", "options": {"prompt": "\u0000\u0000\u0000"}},
    ],
)
def test_odd_bodies_never_500(api, team, body):
    lift_limits(team)
    response = api.post("/v1/video/generate", raw=json.dumps(body).replace("1e+999", "1e999"))
    assert response.status_code in {200, 422}, response.content
    assert response["Content-Type"] == "application/json"


def test_nan_and_infinity_literals_are_refused_not_crashed(api):
    response = api.post(
        "/v1/video/generate", raw=f'{{"input": "{URL}", "options": {{"prompt": "zoom in", "guidance_scale": NaN}}}}'
    )
    assert_envelope(response, 422, "9000", field="options.guidance_scale")


# --- auth and the order of checks -----------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "bearer iv_wrong", "Token x"])
def test_missing_or_wrong_key_is_401(client, team, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    for method, path in [("POST", "/v1/video/generate"), ("GET", "/v1/video/generate"), ("GET", "/v1/account")]:
        response = client.generic(method, path, json.dumps(BODY), content_type="application/json", **extra)
        body = assert_envelope(response, 401, "111")
        assert body["error_type"] == "auth"
    assert Generation.objects.count() == 0


def test_revoked_key_is_401(api, team):
    ApiKey.objects.update(revoked_at=timezone.now())
    assert_envelope(api.get("/v1/account"), 401, "111")


def test_key_without_video_scope_is_403(client, team):
    api = Api(client, make_api_key(team, scopes=["storage"]))
    body = assert_envelope(api.post("/v1/video/generate", BODY), 403, "112")
    assert body["error_type"] == "auth"
    assert_envelope(api.get("/v1/video/generate"), 403, "112")
    assert Generation.objects.count() == 0


def test_403_on_generate_post_carries_rate_headers_but_not_on_other_endpoints(client, team):
    api = Api(client, make_api_key(team, scopes=["storage"]))
    refused = api.post("/v1/video/generate", BODY)
    assert_envelope(refused, 403, "112")
    assert refused["RateLimit-Limit"] == "1, 15;w=60, 1;w=1"
    assert refused["RateLimit-Remaining"] == "1"
    assert refused["RateLimit-Reset"] == "0"
    assert "Retry-After" not in refused
    # They belong to POST /v1/video/generate only (docs/credits.md); 401 has no team to count.
    assert "RateLimit-Limit" not in assert_envelope_response(api.get("/v1/video/generate"), 403)
    assert "RateLimit-Limit" not in assert_envelope_response(api.post("/v1/video/generate/1/cancel"), 403)
    assert "RateLimit-Limit" not in assert_envelope_response(Api(client, None).post("/v1/video/generate", BODY), 401)


def assert_envelope_response(response, status: int):
    assert response.status_code == status, response.content
    return response


def test_check_order_401_before_403_before_400(client, team):
    assert_envelope(Api(client, None).post("/v1/video/generate", raw=b"{"), 401, "111")
    assert_envelope(
        Api(client, make_api_key(team, scopes=["storage"])).post("/v1/video/generate", raw=b"{"), 403, "112"
    )
    assert_envelope(Api(client, make_api_key(team)).post("/v1/video/generate", raw=b"{"), 400, "1000")


def test_check_order_422_before_429_before_402(api, team):
    assert api.post("/v1/video/generate", BODY).status_code == 200  # fills the 1 s window
    # Rate window full: a bad body is still a 422, a good one a 429.
    assert_envelope(api.post("/v1/video/generate", {"input": URL, "options": {"prompt": "ab"}}), 422, "9000")
    team.refresh_from_db()
    from generator.services.billing import credits_grant

    credits_grant(team=team, amount=-team.balance, reason="empty for the test")
    refused = api.post("/v1/video/generate", BODY)
    assert_envelope(refused, 429, "2001")
    assert refused["Retry-After"] == refused["RateLimit-Reset"]
    assert int(refused["Retry-After"]) >= 1
    assert refused["RateLimit-Remaining"] == "-1"
    lift_limits(team)
    short = api.post("/v1/video/generate", BODY)
    body = assert_envelope(short, 402, "3000")
    assert body["error_type"] == "billing"
    assert "RateLimit-Limit" in short
    assert Generation.objects.count() == 1


def test_rate_headers_on_refusals_after_auth(api, team):
    for response in (
        api.post("/v1/video/generate", raw=b"[]"),
        api.post("/v1/video/generate", {"input": ""}),
    ):
        # Nothing accepted yet: the 1 s window (1 left) is the nearer to exhaustion.
        assert response["RateLimit-Limit"] == "1, 15;w=60, 1;w=1"
        assert response["RateLimit-Remaining"] == "1"
        assert response["RateLimit-Reset"] == "0"


def test_sixteenth_submit_in_a_minute_is_429_with_headers(api, team):
    team.rate_per_second = 100
    team.save(update_fields=["rate_per_second"])
    for _ in range(15):
        assert api.post("/v1/video/generate", BODY).status_code == 200
    refused = api.post("/v1/video/generate", BODY)
    assert_envelope(refused, 429, "2001")
    assert refused["RateLimit-Limit"] == "15, 15;w=60, 100;w=1"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert Generation.objects.count() == 15
    assert balance(team) == 1000 - 15 * 35


# --- reading ----------------------------------------------------------------------------------


def make_generation(team, **fields) -> Generation:
    defaults = {
        "request": {"input": URL, "options": {"prompt": "zoom in", "duration": 5, "guidance_scale": 0.5}},
        "cost": 35,
    }
    return Generation.objects.create(team=team, **{**defaults, **fields})


def test_detail_of_processing_job_has_empty_errors_and_result(api, team):
    lift_limits(team)
    accepted = api.post("/v1/video/generate", BODY).json()["data"]
    response = api.get(f"/v1/video/generate/{accepted['id']}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {
        "id": accepted["id"],
        "status": "PROCESSING",
        "created_at": accepted["created_at"],
        "request": accepted["request"],
        "errors": [],
        "result": {},
    }


def test_detail_of_done_temporary_job_has_objects_and_tmp_url(api, team):
    generation = make_generation(
        team,
        status="DONE",
        stage="done",
        completed_at=timezone.now(),
        video_name="videos/x.mp4",
        input_object={"ext": "jpg", "mps": 1.92, "mime": "image/jpeg", "format": "jpeg", "width": 1600, "height": 1200},
        output_object={"ext": "mp4", "mime": "video/mp4", "format": "mp4"},
    )
    data = api.get(f"/v1/video/generate/{generation.pk}").json()["data"]
    assert data["errors"] == []
    assert data["result"]["input_object"] == generation.input_object
    output = data["result"]["output_object"]
    assert output["tmp_url"].startswith("http://testserver/v/")
    assert {k: v for k, v in output.items() if k != "tmp_url"} == {"ext": "mp4", "mime": "video/mp4", "format": "mp4"}


def test_detail_of_done_storage_job_has_storage_fields(api, team):
    storage = Storage.objects.get(team=team)
    generation = make_generation(
        team,
        status="DONE",
        stage="done",
        completed_at=timezone.now(),
        is_temporary=False,
        output_storage=storage,
        output_key="videos/a.mp4",
        output_object={
            "ext": "mp4",
            "mime": "video/mp4",
            "format": "mp4",
            "object_key": "videos/a.mp4",
            "object_bucket": team.slug,
            "object_uri": f"local://{team.slug}/videos/a.mp4",
            "claid_storage_uri": "storage://mine/videos/a.mp4",
        },
    )
    output = api.get(f"/v1/video/generate/{generation.pk}").json()["data"]["result"]["output_object"]
    assert output["claid_storage_uri"] == "storage://mine/videos/a.mp4"
    assert output["object_key"] == "videos/a.mp4"
    assert output["tmp_url"].startswith("http://testserver/v/")
    storage.delete()
    output = api.get(f"/v1/video/generate/{generation.pk}").json()["data"]["result"]["output_object"]
    # The storage was disconnected: no link to offer, but the object_* fields still say where the file is.
    assert "tmp_url" not in output
    assert output["claid_storage_uri"] == "storage://mine/videos/a.mp4"
    assert output["object_uri"] == f"local://{team.slug}/videos/a.mp4"


def test_detail_of_failed_job_lists_the_reason_and_no_result(api, team):
    failed_at = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    generation = make_generation(
        team,
        status="ERROR",
        stage="error",
        errors=[{"error": "the image is 299 px wide", "created_at": failed_at.isoformat()}],
    )
    data = api.get(f"/v1/video/generate/{generation.pk}").json()["data"]
    assert data["errors"] == [{"error": "the image is 299 px wide", "created_at": "2026-11-25T12:00:00.000000+00:00"}]
    assert data["result"] == {}


def test_another_teams_generation_is_404_on_detail_and_cancel(api, team):
    theirs = make_generation(make_team())
    assert_envelope(api.get(f"/v1/video/generate/{theirs.pk}"), 404, "1004")
    assert_envelope(api.post(f"/v1/video/generate/{theirs.pk}/cancel"), 404, "1004")
    theirs.refresh_from_db()
    assert theirs.status == "PROCESSING"


@pytest.mark.parametrize("pk", ["0", "999999", str(2**63), "9" * 40])
def test_unknown_ids_are_404(api, pk):
    assert_envelope(api.get(f"/v1/video/generate/{pk}"), 404, "1004")
    assert_envelope(api.post(f"/v1/video/generate/{pk}/cancel"), 404, "1004")


def test_cancel_refunds_and_answers_cancelled(api, team):
    data = api.post("/v1/video/generate", BODY).json()["data"]
    assert balance(team) == 965
    response = api.post(f"/v1/video/generate/{data['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "CANCELLED"
    assert response.json()["data"]["errors"] == []
    assert balance(team) == 1000


def test_cancel_of_started_job_is_409(api, team):
    data = api.post("/v1/video/generate", BODY).json()["data"]
    Generation.objects.filter(pk=data["id"]).update(stage="rendering", attempts=1)
    assert_envelope(api.post(f"/v1/video/generate/{data['id']}/cancel"), 409, "1009")
    assert balance(team) == 965


def test_list_is_newest_first_paged_by_cursor_and_scoped_to_team(api, team):
    start = timezone.now() - timedelta(minutes=10)
    mine = [make_generation(team, created_at=start + timedelta(seconds=i)) for i in range(5)]
    make_generation(make_team())
    first = api.get("/v1/video/generate", {"limit": 2}).json()
    assert [g["id"] for g in first["data"]] == [mine[4].pk, mine[3].pk]
    second = api.get("/v1/video/generate", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [g["id"] for g in second["data"]] == [mine[2].pk, mine[1].pk]
    third = api.get("/v1/video/generate", {"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [g["id"] for g in third["data"]] == [mine[0].pk]
    assert third["next_cursor"] is None


def test_list_pages_ties_on_created_at_without_loss(api, team):
    moment = timezone.now()
    made = {make_generation(team, created_at=moment).pk for _ in range(3)}
    seen, cursor = [], None
    while True:
        page = api.get("/v1/video/generate", {"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [g["id"] for g in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert len(seen) == 3


def test_list_filters_by_status(api, team):
    done = make_generation(team, status="DONE", stage="done", completed_at=timezone.now())
    make_generation(team)
    data = api.get("/v1/video/generate", {"status": "DONE"}).json()["data"]
    assert [g["id"] for g in data] == [done.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "٣"}, "limit"),
        ({"status": "FINISHED"}, "status"),
        ({"cursor": "garbage!!"}, "cursor"),
        ({"cursor": "MjAyNi0xMS0yNXxhYmM"}, "cursor"),
    ],
)
def test_bad_list_params_are_422(api, params, field):
    assert_envelope(api.get("/v1/video/generate", params), 422, "9000", field=field)


# --- account, documents, fallbacks -------------------------------------------------------------


def test_account_shows_balance_limits_and_this_months_usage(api, team):
    lift_limits(team)
    first = api.post("/v1/video/generate", BODY).json()["data"]
    api.post("/v1/video/generate", {**BODY, "options": {"prompt": "zoom in", "duration": 10}})
    api.post(f"/v1/video/generate/{first['id']}/cancel")
    data = api.get("/v1/account").json()["data"]
    assert data["team"] == team.name
    assert data["balance"] == 1000 - 70
    assert data["rate_limits"] == {"per_second": 1000, "per_minute": 1000}
    assert data["usage_this_month"]["credits"] == 70
    # The cancelled job was refunded: one billed video, matching the 70 credits.
    assert data["usage_this_month"]["generations"] == 1


def test_account_works_with_any_scope(client, team):
    response = Api(client, make_api_key(team, scopes=["storage"])).get("/v1/account")
    assert response.status_code == 200
    assert response.json()["data"]["rate_limits"] == {"per_second": 1, "per_minute": 15}


def test_openapi_needs_no_key_and_lists_every_endpoint(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/v1/video/generate",
        "/v1/video/generate/{id}",
        "/v1/video/generate/{id}/cancel",
        "/v1/video/batches",
        "/v1/video/batches/{id}",
        "/v1/video/batches/{id}/cancel",
        "/v1/video/batches/{id}/results.csv",
        "/v1/video/batches/{id}/archive.zip",
        "/v1/account",
        "/v1/storage/storage-types",
        "/v1/storage/storages",
        "/v1/storage/storages/{id}",
        "/v1/engines",
        "/v1/engines/{id}",
        "/v1/openapi.json",
    }
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the team.",
    }


def test_docs_page_renders_every_operation_without_external_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("/v1/video/generate/{id}/cancel", "/v1/storage/storages/{id}", "GenerateRequest", "RateLimited"):
        assert text in html
    assert "curl -s http://testserver/v1/video/generate" in html
    # Self-contained: nothing is loaded from anywhere (no CDN, no script, no stylesheet link).
    for loader in ("<script", "<link", "src=", "@import", "url("):
        assert loader not in html


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nothing",
        "/v1/video/generate/",
        "/v1/video/generate/abc",
        "/v1/video/generate/-1",
        "/v1/",
        "/v1/storage/storages/%0Ax",
    ],
)
def test_unknown_v1_paths_answer_the_404_envelope(api, path):
    assert_envelope(api.get(path), 404, "1004")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/video/generate"),
        ("DELETE", "/v1/video/generate"),
        ("POST", "/v1/video/generate/1"),
        ("GET", "/v1/video/generate/1/cancel"),
        ("POST", "/v1/account"),
        ("POST", "/v1/openapi.json"),
        ("PUT", "/v1/storage/storages"),
    ],
)
def test_wrong_method_is_405_envelope(api, method, path):
    response = api.call(method, path)
    assert_envelope(response, 405, "1005")
    assert response["Allow"]


def test_another_teams_storage_is_404_on_the_storages_api(client, team):
    # Changing storages is for owners and admins: a member's key would be a 403 before the lookup.
    api = Api(client, make_api_key(team, user=make_member(team, make_user("ada@example.com"), role="admin").user))
    theirs = Storage.objects.create(team=make_team(), name="theirs", type="local", parameters={"path": ""})
    path = f"/v1/storage/storages/{theirs.pk}"
    assert_envelope(api.get(path), 404, "1004")
    assert_envelope(
        api.client.generic(
            "PATCH",
            path,
            json.dumps({"name": "mine2"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api.key}",
        ),
        404,
        "1004",
    )
    assert_envelope(api.call("DELETE", path), 404, "1004")
    theirs.refresh_from_db()
    assert theirs.name == "theirs"


def test_body_over_the_upload_limit_is_400_envelope(api, team, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/v1/video/generate", {"input": URL, "options": {"prompt": "x" * 2000}})
    body = assert_envelope(response, 400, "1000")
    assert "larger than 1000 bytes" in body["error_message"]
    assert Generation.objects.count() == 0


def test_openapi_document_is_valid_openapi_3_1(client):
    from openapi_spec_validator import validate

    validate(client.get("/v1/openapi.json").json())


def test_account_usage_counts_only_this_month(api, team):
    from generator.services.billing import month_start

    start = month_start(timezone.now())
    old = make_generation(team, created_at=start - timedelta(seconds=1))
    new = make_generation(team, created_at=start)
    for generation, moment in ((old, start - timedelta(seconds=1)), (new, start)):
        CreditLedger.objects.create(
            team=team, generation=generation, kind="hold", amount=-35, balance_after=965, created_at=moment
        )
    usage = api.get("/v1/account").json()["data"]["usage_this_month"]
    assert usage == {"credits": 35, "generations": 1, "since": start.astimezone(UTC).isoformat(timespec="microseconds")}


def test_account_generations_skip_jobs_refunded_after_error(api, team):
    from generator.services.billing import credits_refund

    lift_limits(team)
    ids = [api.post("/v1/video/generate", BODY).json()["data"]["id"] for _ in range(3)]
    failed = Generation.objects.get(pk=ids[0])
    Generation.objects.filter(pk=failed.pk).update(status=Generation.Status.ERROR)
    credits_refund(generation=failed, reason="fetch failed")
    usage = api.get("/v1/account").json()["data"]["usage_this_month"]
    assert usage["credits"] == 70
    assert usage["generations"] == 2


def test_deleted_generation_is_404_and_not_listed(api, team):
    generation = make_generation(team, deleted_at=timezone.now())
    assert_envelope(api.get(f"/v1/video/generate/{generation.pk}"), 404, "1004")
    assert api.get("/v1/video/generate").json()["data"] == []
