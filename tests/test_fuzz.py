"""Fuzzing (Hypothesis, bounded): the request validator through the real API, the storage:// key parser, the URL policy.

Whatever arrives, the answer is a 2xx or the error envelope, and the parsers either accept or refuse
with their own user-facing error: never another exception, never a 500 (the test client re-raises
any exception a view lets escape).
"""

from __future__ import annotations

import ipaddress
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.netpolicy import UrlRejected, address_allowed, check_host_addresses, check_url_syntax
from generator.storage.uris import KeyRejected, parse_storage_uri
from tests.harness import bearer

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces, CI time stays bounded
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ENVELOPE_KEYS = {"error_code", "error_type", "error_message", "error_details"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
hosts = st.one_of(
    st.sampled_from(["shop.example", "127.0.0.1", "[::1]", "169.254.169.254", "[::ffff:10.0.0.1]", "xn--", "0x7f.1"]),
    st.text(alphabet=string.ascii_letters + string.digits + ".-_[]:%@", max_size=30),
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
)
urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "https", "ftp", "file", "HTTPS", "javascript", ""]),
    hosts,
    st.sampled_from(["", ":80", ":443", ":8080", ":0", ":99999", ":-1", ":abc"]),
    st.text(max_size=30),
)
storage_uris = st.builds(lambda rest: "storage://" + rest, st.text(max_size=60)) | st.builds(
    lambda name, key: f"storage://{name}/{key}",
    st.sampled_from(["mine", "uploads", "nope", "", "a" * 60]),
    st.text(alphabet=string.printable + "é%\u202e\x00", max_size=60),
)
inputs = st.one_of(urls, storage_uris, st.text(max_size=40), json_values)
options = st.fixed_dictionaries(
    {},
    optional={
        "prompt": st.one_of(st.text(max_size=80), json_values, st.just({"generate": True})),
        "duration": st.one_of(st.sampled_from([5, 10, "5", 7, -1, 10**30]), json_values),
        "guidance_scale": st.one_of(st.floats(), st.integers(), json_values),
        "aspect_ratio": st.one_of(st.sampled_from(["16:9", "9:16", "1:1", "4:5", "source", "3:2"]), json_values),
        "resolution": st.one_of(st.sampled_from(["1080p", "720p", "4k"]), json_values),
        "loop": json_values,
        "background": json_values,
        "negative_prompt": json_values,
    },
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"input": inputs, "options": options},
        optional={"output": st.one_of(storage_uris, json_values), "extra": json_values},
    ),
)


def assert_answer(response) -> None:
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 300:
        assert response["Content-Type"] == "application/json"
        body = response.json()
        body = body.get("detail", body) if response.status_code == 429 else body
        assert set(body) == ENVELOPE_KEYS, body
        assert isinstance(body["error_details"], dict)


@FUZZ
@given(body=bodies)
def test_any_generate_body_is_answered_with_a_2xx_or_the_error_envelope(
    client, key, unlimited, mine_storage, dns, body
):
    response = client.post("/v1/video/generate", json.dumps(body), content_type="application/json", **bearer(key))
    assert_answer(response)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_raw_body_is_answered_with_the_error_envelope_or_accepted(client, key, unlimited, dns, raw):
    assert_answer(client.post("/v1/video/generate", raw, content_type="application/json", **bearer(key)))


@FUZZ
@given(uri=storage_uris | st.text(max_size=60))
def test_the_storage_key_parser_accepts_or_refuses_with_key_rejected(uri):
    try:
        parsed = parse_storage_uri(uri)
    except KeyRejected as exc:
        assert exc.args[0], "a refusal says why"  # noqa: PT017 (any input: raises or not, both are fine)
    else:
        assert str(parsed) == uri
        assert ".." not in parsed.key.split("/")
        assert not parsed.key.startswith("/")


@FUZZ
@given(url=urls | st.text(max_size=60))
def test_the_url_policy_accepts_or_refuses_with_url_rejected(url):
    try:
        scheme, host, port = check_url_syntax(url)
    except UrlRejected as exc:
        assert exc.args[0], "a refusal says why"  # noqa: PT017 (any input: raises or not, both are fine)
    else:
        assert scheme in {"http", "https"}
        assert host
        assert port in {80, 443}


@FUZZ
@given(host=hosts, answer=st.lists(st.ip_addresses(), min_size=1, max_size=3))
def test_the_address_policy_never_lets_a_refused_address_through(dns, host, answer):
    answers, _lookups = dns
    answers[host.rstrip(".") or host] = [str(ip) for ip in answer]
    try:
        addresses = check_host_addresses(host, 443)
    except UrlRejected as exc:
        assert exc.args[0], "a refusal says why"  # noqa: PT017 (any input: raises or not, both are fine)
    else:
        assert addresses
        assert all(address_allowed(ipaddress.ip_address(ip)) for ip in addresses)
