"""Login lockouts (django-axes): every login path, the identity Django authenticates, the real client address."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.urls import reverse

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed attempts. Wait 5 minutes and try again, or reset your password."


@pytest.fixture
def mia():
    return make_user("mia@example.com")


@pytest.fixture
def staff():
    return make_user("ops@example.com", is_staff=True, is_superuser=True)


def _fail(client, url: str, username: str, times: int = 5, **extra) -> None:
    """Post wrong passwords; the fifth failure of an account already answers with the lockout."""
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong"}, **extra)
        assert response.status_code in (200, 429)
        assert "_auth_user_id" not in client.session


def _assert_locked(response, client) -> None:
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_five_failures_lock_the_account_with_the_login_page_and_its_message(client, mia):
    for _ in range(4):
        assert client.post(reverse("login"), {"username": "mia@example.com", "password": "x"}).status_code == 200
    _assert_locked(client.post(reverse("login"), {"username": "mia@example.com", "password": "x"}), client)

    response = client.post(reverse("login"), {"username": "mia@example.com", "password": PASSWORD})

    _assert_locked(response, client)
    assert '<form method="post" action="/accounts/login/"' in response.content.decode()


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff4d\uff49\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",  # full width
        "MIA@EXAMPLE.COM",
        " Mia@Example.com ",
        "Mia@example.com",
    ],
)
def test_another_spelling_of_a_locked_email_is_the_same_locked_account(client, mia, spelling):
    _fail(client, reverse("login"), "mia@example.com")

    _assert_locked(client.post(reverse("login"), {"username": spelling, "password": PASSWORD}), client)


def test_failures_under_different_spellings_add_up_on_one_account(client, mia):
    for spelling in (
        "mia@example.com",
        "MIA@example.com",
        "\uff4dia@example.com",
        "Mia@EXAMPLE.com",
        "mia@example.COM",
    ):
        _fail(client, reverse("login"), spelling, times=1)

    _assert_locked(client.post(reverse("login"), {"username": "mia@example.com", "password": PASSWORD}), client)


def test_the_admin_login_is_locked_too(client, staff):
    _fail(client, "/admin/login/", "ops@example.com")

    response = client.post("/admin/login/", {"username": "ops@example.com", "password": PASSWORD})

    _assert_locked(response, client)
    assert 'id="login-form"' in response.content.decode()


def test_failures_on_the_dashboard_count_on_the_admin_login(client, staff):
    _fail(client, reverse("login"), "ops@example.com")
    _assert_locked(client.post("/admin/login/", {"username": "ops@example.com", "password": PASSWORD}), client)


def test_the_account_is_locked_whatever_address_the_guesses_come_from(client, mia):
    for n in range(5):
        _fail(client, reverse("login"), "mia@example.com", times=1, REMOTE_ADDR=f"203.0.113.{n + 1}")

    locked = client.post(
        reverse("login"), {"username": "mia@example.com", "password": PASSWORD}, REMOTE_ADDR="198.51.100.7"
    )
    _assert_locked(locked, client)


def test_a_locked_account_does_not_lock_other_accounts_from_the_same_address(client, mia):
    make_user("owner@example.com")
    _fail(client, reverse("login"), "mia@example.com")

    response = client.post(reverse("login"), {"username": "owner@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_a_successful_login_clears_earlier_failures(client, mia):
    _fail(client, reverse("login"), "mia@example.com", times=4)
    assert client.post(reverse("login"), {"username": "mia@example.com", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))

    _fail(client, reverse("login"), "mia@example.com", times=4)
    assert client.post(reverse("login"), {"username": "mia@example.com", "password": PASSWORD}).status_code == 302


@pytest.mark.parametrize(
    ("raw", "identity"),
    [
        ("mia@example.com", "mia@example.com"),
        ("\uff2d\uff49\uff41@example.com", "mia@example.com"),
        ("  MIA@Example.COM ", "mia@example.com"),
        ("STRASSE@example.com", "strasse@example.com"),
        ("", None),
    ],
)
def test_the_identity_is_nfkc_and_case_folded(raw, identity):
    from generator.lockout import login_identity

    assert login_identity(None, {"username": raw}) == identity
    assert login_identity(None, {"email": raw}) == identity


def test_behind_a_proxy_the_address_is_the_hop_the_proxy_appended(settings):
    from generator.lockout import client_ip

    request = RequestFactory().post(
        "/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9"
    )
    settings.BEHIND_PROXY = True
    assert client_ip(request) == "203.0.113.9"
    settings.BEHIND_PROXY = False
    assert client_ip(request) == "10.0.0.2"


def _locked_out_addresses(client, **headers) -> list[str]:
    """Lock Mia out with these request headers; return the client addresses axes locked out."""
    from axes.signals import user_locked_out

    seen: list[str] = []
    user_locked_out.connect(lambda sender, ip_address, **kw: seen.append(ip_address), weak=False, dispatch_uid="seen")
    try:
        _fail(client, reverse("login"), "mia@example.com", **headers)
    finally:
        user_locked_out.disconnect(dispatch_uid="seen")
    return seen


def test_without_the_proxy_setting_a_forged_x_forwarded_for_is_ignored(client, mia, settings):
    settings.BEHIND_PROXY = False
    seen = _locked_out_addresses(client, HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert seen == ["127.0.0.1"]


def test_behind_the_proxy_each_client_is_counted_at_its_own_address(client, mia, settings):
    settings.BEHIND_PROXY = True
    seen = _locked_out_addresses(client, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.23")
    assert seen == ["198.51.100.23"]
