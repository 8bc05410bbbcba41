"""Admin: every model's pages load for staff, credits change only through the grant action."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from generator.models import ApiKey, CreditLedger, EngineConnection, Membership, Storage
from tests.factories import make_api_key, make_member, make_team, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("admin@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "model",
    [
        "team",
        "user",
        "membership",
        "invite",
        "apikey",
        "storage",
        "engineconnection",
        "generation",
        "creditledger",
        "webhookdelivery",
    ],
)
def test_every_model_changelist_loads_for_staff(staff_client, model):
    make_team("Acme", credits=100)
    assert staff_client.get(reverse(f"admin:generator_{model}_changelist")).status_code == 200


def test_django_q_admin_stays_available(staff_client):
    assert staff_client.get(reverse("admin:django_q_schedule_changelist")).status_code == 200


def test_non_staff_member_cannot_open_the_admin(client):
    team = make_team("Acme")
    client.force_login(make_member(team).user)
    assert client.get(reverse("admin:generator_team_changelist")).status_code == 302


def grant(team, amount: int, reason: str) -> dict:
    """The admin's grant action form, submitted for one team."""
    return {
        "action": "grant_credits",
        ACTION_CHECKBOX_NAME: [team.pk],
        "apply": "1",
        "amount": str(amount),
        "reason": reason,
    }


def test_grant_action_asks_for_a_reason_then_writes_one_ledger_entry_with_the_admin(
    staff_client,
):
    team = make_team("Acme", credits=100)
    url = reverse("admin:generator_team_changelist")
    form = staff_client.post(url, {"action": "grant_credits", ACTION_CHECKBOX_NAME: [team.pk]})
    assert form.status_code == 200
    assert "Grant or deduct credits" in form.content.decode()

    missing_reason = staff_client.post(url, grant(team, 500, " "))
    assert missing_reason.status_code == 200
    assert (
        "This field is required" in missing_reason.content.decode()
        or "reason is required" in missing_reason.content.decode()
    )
    team.refresh_from_db()
    assert team.balance == 100

    done = staff_client.post(url, grant(team, 500, "Q4 budget"))
    assert done.status_code == 302
    team.refresh_from_db()
    assert team.balance == 600
    entry = CreditLedger.objects.filter(team=team).latest("pk")
    assert entry.kind == CreditLedger.Kind.GRANT
    assert entry.amount == 500
    assert entry.reason == "Q4 budget"
    assert entry.actor.email == "admin@example.com"


def test_deduction_below_zero_is_refused_and_changes_nothing(staff_client):
    team = make_team("Acme", credits=100)
    response = staff_client.post(
        reverse("admin:generator_team_changelist"),
        grant(team, -150, "oops"),
        follow=True,
    )
    assert "cannot deduct 150" in response.content.decode()
    team.refresh_from_db()
    assert team.balance == 100


def test_team_balance_is_read_only_and_ledger_is_inline(staff_client):
    team = make_team("Acme", credits=250)
    html = staff_client.get(reverse("admin:generator_team_change", args=[team.pk])).content.decode()
    assert 'name="balance"' not in html
    assert "250" in html
    assert "test setup" in html
    staff_client.post(
        reverse("admin:generator_team_change", args=[team.pk]),
        {
            "name": "Acme",
            "slug": team.slug,
            "balance": "999999",
            "monthly_allowance": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "ledger-TOTAL_FORMS": "0",
            "ledger-INITIAL_FORMS": "0",
        },
    )
    team.refresh_from_db()
    assert team.balance == 250


def test_ledger_admin_is_read_only(staff_client):
    team = make_team("Acme", credits=10)
    entry = CreditLedger.objects.get(team=team)
    assert staff_client.get(reverse("admin:generator_creditledger_add")).status_code == 403
    staff_client.post(reverse("admin:generator_creditledger_delete", args=[entry.pk]), {"post": "yes"})
    assert CreditLedger.objects.filter(pk=entry.pk).exists()


def test_revoke_keys_action(staff_client):
    team = make_team("Acme")
    make_api_key(team)
    key = ApiKey.objects.get(team=team)
    response = staff_client.post(
        reverse("admin:generator_apikey_changelist"),
        {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [key.pk]},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_storage_admin_never_shows_secrets(staff_client):
    team = make_team("Acme")
    storage = Storage.objects.create(
        team=team,
        name="box",
        type="s3",
        parameters={"bucket": "b"},
        secrets_encrypted="gAAAAA-ciphertext-here",
    )
    html = staff_client.get(reverse("admin:generator_storage_change", args=[storage.pk])).content.decode()
    assert "box" in html
    assert "ciphertext-here" not in html


def test_engine_admin_edits_prices_and_never_shows_the_key(staff_client):
    from generator.crypto import encrypt_json

    team = make_team("Acme")
    engine = EngineConnection.objects.create(
        team=team, name="claid", type="claid", secrets_encrypted=encrypt_json({"api_key": "sk-very-secret"})
    )
    url = reverse("admin:generator_engineconnection_change", args=[engine.pk])
    html = staff_client.get(url).content.decode()
    assert "sk-very-secret" not in html
    assert engine.secrets_encrypted not in html
    response = staff_client.post(url, {"price_5s": "12", "price_10s": "24", "parameters": "{}"})
    assert response.status_code == 302
    engine.refresh_from_db()
    assert (engine.price_5s, engine.price_10s, engine.name) == (12, 24, "claid")


def test_generation_admin_filters_and_search(staff_client):
    team = make_team("Acme")
    make_member(team, role=Membership.Role.OWNER)
    url = reverse("admin:generator_generation_changelist")
    assert staff_client.get(url, {"status__exact": "DONE"}).status_code == 200
    assert staff_client.get(url, {"q": "Acme"}).status_code == 200


def _member_with_key(team, email: str = "leaver@example.com"):
    member = make_member(team, make_user(email))
    raw = make_api_key(team, user=member.user)
    return member, raw


def _key_works(client, raw: str) -> bool:
    return client.get("/v1/account", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200


def test_deleting_a_membership_in_the_admin_revokes_the_members_keys(staff_client):
    team = make_team("Acme")
    member, raw = _member_with_key(team)
    other_team = make_team("Other")
    make_member(other_team, member.user)
    elsewhere = make_api_key(other_team, user=member.user)
    assert _key_works(staff_client, raw)
    response = staff_client.post(reverse("admin:generator_membership_delete", args=[member.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert not _key_works(staff_client, raw)
    # Only the keys made in the team they left.
    assert _key_works(staff_client, elsewhere)


def test_bulk_deleting_memberships_in_the_admin_revokes_their_keys(staff_client):
    team = make_team("Acme")
    first, first_raw = _member_with_key(team, "one@example.com")
    second, second_raw = _member_with_key(team, "two@example.com")
    stayer, stayer_raw = _member_with_key(team, "stays@example.com")
    response = staff_client.post(
        reverse("admin:generator_membership_changelist"),
        {
            "action": "delete_selected",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert list(Membership.objects.filter(team=team)) == [stayer]
    assert not _key_works(staff_client, first_raw)
    assert not _key_works(staff_client, second_raw)
    assert _key_works(staff_client, stayer_raw)


def _team_form(team, memberships, *, delete: set[int] = frozenset(), users=None) -> dict:
    data = {
        "name": team.name,
        "slug": team.slug,
        "monthly_allowance": "0",
        "rate_per_second": "",
        "rate_per_minute": "",
        "webhook_url": "",
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "ledger-TOTAL_FORMS": "0",
        "ledger-INITIAL_FORMS": "0",
    }
    for i, m in enumerate(memberships):
        data.update(
            {
                f"memberships-{i}-id": str(m.pk),
                f"memberships-{i}-team": str(team.pk),
                f"memberships-{i}-user": str((users or {}).get(m.pk, m.user_id)),
                f"memberships-{i}-role": m.role,
                f"memberships-{i}-monthly_cap": "",
            }
        )
        if m.pk in delete:
            data[f"memberships-{i}-DELETE"] = "on"
    return data


def test_removing_a_member_in_the_team_inline_revokes_their_keys(staff_client):
    team = make_team("Acme")
    leaver, leaver_raw = _member_with_key(team, "leaver@example.com")
    stayer, stayer_raw = _member_with_key(team, "stays@example.com")
    response = staff_client.post(
        reverse("admin:generator_team_change", args=[team.pk]),
        _team_form(team, [leaver, stayer], delete={leaver.pk}),
    )
    assert response.status_code == 302
    assert list(Membership.objects.filter(team=team)) == [stayer]
    assert not _key_works(staff_client, leaver_raw)
    assert _key_works(staff_client, stayer_raw)


def test_giving_a_membership_to_another_user_in_the_inline_revokes_the_old_users_keys(
    staff_client,
):
    team = make_team("Acme")
    leaver, leaver_raw = _member_with_key(team)
    newcomer = make_user("new@example.com")
    response = staff_client.post(
        reverse("admin:generator_team_change", args=[team.pk]),
        _team_form(team, [leaver], users={leaver.pk: newcomer.pk}),
    )
    assert response.status_code == 302
    assert Membership.objects.get(pk=leaver.pk).user == newcomer
    assert not _key_works(staff_client, leaver_raw)


def test_deleting_a_user_in_the_admin_revokes_their_keys(staff_client):
    team = make_team("Acme")
    member, raw = _member_with_key(team)
    response = staff_client.post(reverse("admin:generator_user_delete", args=[member.user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not _key_works(staff_client, raw)
