"""Powers follow the member's current role: monthly caps, invites and API keys (docs/security.md)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generator.models import Membership, Storage
from generator.services.teams import member_update
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
