"""Powers follow the member's current role: monthly caps, invites and API keys (docs/security.md)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generator.models import Membership
from tests.factories import make_member, make_team, make_user

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
