"""Powers follow the member's current role: monthly caps, invites and API keys (docs/security.md)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generator.models import Invite, Membership, Storage
from generator.services.teams import invite_create, member_remove, member_update
from tests.factories import make_api_key, make_member, make_team, make_user
from tests.harness import bearer

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def owner(team):
    return make_member(team, make_user("owner@example.com"), role=Role.OWNER)


@pytest.fixture
def capped_admin(team):
    return make_member(team, make_user("ada@example.com"), role=Role.ADMIN, monthly_cap=100)


def _post_member(client, membership, *, role: str, cap: str | None):
    data = {f"m{membership.pk}-role": role}
    if cap is not None:
        data[f"m{membership.pk}-monthly_cap"] = cap
    return client.post(reverse("generator:member-update", args=[membership.pk]), data, follow=True)


# --- item 6: nobody changes their own cap; only owners change an admin's ------------------------


def test_a_capped_admin_cannot_lift_their_own_cap(client, capped_admin):
    client.force_login(capped_admin.user)
    response = _post_member(client, capped_admin, role=Role.ADMIN, cap="")
    capped_admin.refresh_from_db()
    assert capped_admin.monthly_cap == 100
    assert "nobody changes their own monthly cap" in response.content.decode()


def test_an_admin_cannot_change_another_admins_cap_but_an_owner_can(client, team, owner, capped_admin):
    other_admin = make_member(team, make_user("bo@example.com"), role=Role.ADMIN)
    client.force_login(other_admin.user)
    response = _post_member(client, capped_admin, role=Role.ADMIN, cap="")
    capped_admin.refresh_from_db()
    assert capped_admin.monthly_cap == 100
    assert "only owners change the monthly cap of an admin" in response.content.decode()
    # Demoting the admin and lifting the cap in the same form is still an admin's cap change.
    _post_member(client, capped_admin, role=Role.MEMBER, cap="")
    capped_admin.refresh_from_db()
    assert (capped_admin.role, capped_admin.monthly_cap) == (Role.ADMIN, 100)

    client.force_login(owner.user)
    _post_member(client, capped_admin, role=Role.ADMIN, cap="")
    capped_admin.refresh_from_db()
    assert capped_admin.monthly_cap is None


def test_an_admin_still_sets_a_members_cap_and_changes_their_own_role_without_the_cap_field(
    client, team, owner, capped_admin
):
    member = make_member(team, make_user("mia@example.com"))
    client.force_login(capped_admin.user)
    _post_member(client, member, role=Role.MEMBER, cap="40")
    member.refresh_from_db()
    assert member.monthly_cap == 40
    page = client.get(reverse("generator:team")).content.decode()
    assert f'name="m{member.pk}-monthly_cap"' in page
    assert f'name="m{capped_admin.pk}-monthly_cap"' not in page  # their own row shows the cap as text
    _post_member(client, capped_admin, role=Role.MEMBER, cap=None)  # what that row's form sends
    capped_admin.refresh_from_db()
    assert (capped_admin.role, capped_admin.monthly_cap) == (Role.MEMBER, 100)


def test_staff_cannot_change_their_own_cap_in_the_admin(client):
    staff = make_user("staff@example.com", is_staff=True, is_superuser=True)
    team = make_team("Acme", slug="acme-admin")
    own = make_member(team, staff, role=Role.OWNER, monthly_cap=50)
    other = make_member(team, make_user("mia@example.com"), monthly_cap=50)
    client.force_login(staff)
    for membership in (own, other):
        client.post(
            reverse("admin:generator_membership_change", args=[membership.pk]),
            {"user": membership.user_id, "team": team.pk, "role": membership.role, "monthly_cap": ""},
        )
    own.refresh_from_db()
    other.refresh_from_db()
    assert own.monthly_cap == 50
    assert other.monthly_cap is None


# --- item 5: a key acts with its creator's current role and status --------------------------


STORAGES = "/v1/storage/storages"


def _connect(client, raw: str, name: str):
    body = {"name": name, "type": "local", "parameters": {"path": name}}
    return client.post(STORAGES, body, content_type="application/json", **bearer(raw))


def test_a_demoted_admins_key_no_longer_manages_storages_but_still_reads_and_generates(client, team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    raw = make_api_key(team, user=admin.user)
    first = _connect(client, raw, "photos")
    assert first.status_code == 201, first.content
    storage = Storage.objects.get(team=team, name="photos")
    member_update(team=team, actor=owner, membership=admin, role=Role.MEMBER)

    for response in (
        _connect(client, raw, "more"),
        client.patch(f"{STORAGES}/{storage.pk}", {"name": "renamed"}, content_type="application/json", **bearer(raw)),
        client.delete(f"{STORAGES}/{storage.pk}", **bearer(raw)),
    ):
        assert response.status_code == 403
        assert response.json()["error_code"] == "112"
        assert "no longer an owner or admin" in response.json()["error_message"]
    assert list(Storage.objects.filter(team=team).values_list("name", flat=True)) == ["photos"]
    assert client.get(STORAGES, **bearer(raw)).status_code == 200
    assert client.get("/v1/video/generate", **bearer(raw)).status_code == 200

    member_update(team=team, actor=owner, membership=admin, role=Role.ADMIN)  # the power follows the role back
    assert client.delete(f"{STORAGES}/{storage.pk}", **bearer(raw)).status_code == 200


def test_a_deactivated_creators_key_is_401_and_works_again_once_reactivated(client, team):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    raw = make_api_key(team, user=admin.user)
    admin.user.is_active = False
    admin.user.save(update_fields=["is_active"])
    for path in ("/v1/account", "/v1/video/generate", STORAGES):
        response = client.get(path, **bearer(raw))
        assert response.status_code == 401, path
        assert response.json()["error_code"] == "111"
    admin.user.is_active = True
    admin.user.save(update_fields=["is_active"])
    assert client.get("/v1/account", **bearer(raw)).status_code == 200


def test_a_key_whose_creator_left_the_team_is_401_even_if_it_was_not_revoked(client, team):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    raw = make_api_key(team, user=admin.user)
    Membership.objects.filter(pk=admin.pk).delete()  # not through the service, so the key is still live
    response = client.get("/v1/account", **bearer(raw))
    assert response.status_code == 401
    assert response.json()["error_code"] == "111"
    # Membership of another team does not count for this team's key.
    make_member(make_team("Other", slug="other"), admin.user, role=Role.OWNER)
    assert client.get("/v1/account", **bearer(raw)).status_code == 401


def test_a_command_line_key_belongs_to_the_team_and_keeps_managing_storages(client, team):
    raw = make_api_key(team)  # created_by None, as manage.py create_api_key makes it
    assert _connect(client, raw, "photos").status_code == 201


# --- item 4: invites do not outlive their sender's powers -----------------------------------


def _accept(client, raw: str):
    return client.post(
        reverse("generator:invite-accept", args=[raw]),
        {"name": "New", "password1": "a-long-Pass-phrase-9", "password2": "a-long-Pass-phrase-9"},
    )


def test_demoting_an_admin_revokes_their_pending_invites_and_the_link_stops_working(client, team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    invite, raw = invite_create(team=team, actor=admin, email="new@example.com", role=Role.ADMIN)
    owners_invite, owners_raw = invite_create(team=team, actor=owner, email="kept@example.com", role=Role.ADMIN)
    member_update(team=team, actor=owner, membership=admin, role=Role.MEMBER)
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    assert Invite.objects.get(pk=owners_invite.pk).revoked_at is None
    assert _accept(client, raw).status_code == 404
    assert not Membership.objects.filter(team=team, user__email="new@example.com").exists()
    assert _accept(client, owners_raw).status_code == 302  # another sender's invite still works


def test_an_owner_made_admin_keeps_admin_invites_but_loses_owner_ones(team, owner):
    second = make_member(team, make_user("sam@example.com"), role=Role.OWNER)
    as_admin, _ = invite_create(team=team, actor=second, email="a@example.com", role=Role.ADMIN)
    as_owner, _ = invite_create(team=team, actor=second, email="o@example.com", role=Role.OWNER)
    member_update(team=team, actor=owner, membership=second, role=Role.ADMIN)
    assert Invite.objects.get(pk=as_admin.pk).revoked_at is None
    assert Invite.objects.get(pk=as_owner.pk).revoked_at is not None


def test_removing_an_admin_revokes_their_invites(team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    invite, _ = invite_create(team=team, actor=admin, email="new@example.com")
    member_remove(team=team, actor=owner, membership=admin)
    assert Invite.objects.get(pk=invite.pk).revoked_at is not None


def test_accepting_rechecks_the_sender_even_when_nothing_revoked_the_invite(client, team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    _, raw = invite_create(team=team, actor=admin, email="new@example.com", role=Role.ADMIN)
    Membership.objects.filter(pk=admin.pk).update(role=Role.MEMBER)  # demoted without the service
    assert _accept(client, raw).status_code == 404
    Membership.objects.filter(pk=admin.pk).update(role=Role.ADMIN)
    admin.user.is_active = False
    admin.user.save(update_fields=["is_active"])
    assert _accept(client, raw).status_code == 404
    assert not Membership.objects.filter(team=team, user__email="new@example.com").exists()


def test_demoting_in_the_django_admin_revokes_the_invites(client, team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    invite, _ = invite_create(team=team, actor=admin, email="new@example.com")
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:generator_membership_change", args=[admin.pk]),
        {"user": admin.user_id, "team": team.pk, "role": Role.MEMBER, "monthly_cap": ""},
    )
    assert response.status_code == 302
    assert Invite.objects.get(pk=invite.pk).revoked_at is not None


def test_owners_and_admins_list_and_revoke_pending_invites_on_the_team_page(client, team, owner):
    admin = make_member(team, make_user("ada@example.com"), role=Role.ADMIN)
    member = make_member(team, make_user("mia@example.com"))
    invite, raw = invite_create(team=team, actor=owner, email="new@example.com")
    owner_invite, _ = invite_create(team=team, actor=owner, email="boss@example.com", role=Role.OWNER)
    revoke = reverse("generator:invite-revoke", args=[invite.pk])

    client.force_login(member.user)
    assert "new@example.com" not in client.get(reverse("generator:team")).content.decode()
    assert client.post(revoke).status_code == 403

    client.force_login(admin.user)
    page = client.get(reverse("generator:team")).content.decode()
    assert "new@example.com" in page
    assert "boss@example.com" in page
    assert f'action="{revoke}"' in page  # inside the no-JS confirm step
    assert reverse("generator:invite-revoke", args=[owner_invite.pk]) not in page
    response = client.post(reverse("generator:invite-revoke", args=[owner_invite.pk]), follow=True)
    assert "only owners can revoke" in response.content.decode()
    assert Invite.objects.get(pk=owner_invite.pk).revoked_at is None

    response = client.post(revoke)
    assert response.status_code == 302
    assert response["Location"].endswith("#invites")
    assert Invite.objects.get(pk=invite.pk).revoked_at is not None
    assert f'id="invite-{invite.pk}"' not in client.get(reverse("generator:team")).content.decode()
    client.logout()
    assert _accept(client, raw).status_code == 404
