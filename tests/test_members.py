"""Maya, Acme's marketing admin, builds her team: she adds people by email with a role, changes
roles and removes people; the site always keeps an admin, and nobody else manages Acme's team."""

import re

import pytest
from django.contrib.auth import get_user_model

from dialogues import services
from dialogues.models import Membership
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role


def team_url(site):
    return f"/sites/{site.pk}/members/"


def roles(site):
    return dict(Membership.objects.filter(site=site).values_list("user__email", "role"))


def test_maya_adds_a_new_person_who_chooses_a_password_then_signs_in(client, maya, acme):
    client.force_login(maya)
    response = client.post(
        team_url(acme), {"email": " Sam@Acme.test ", "role": Role.AGENT}, follow=True
    )
    page = response.content.decode()
    assert "sam@acme.test is now sales agent on Acme." in page
    link = re.search(r"choose their password: (http://testserver(/password/[^ <]+))", page)
    assert link, page
    assert "(has not chosen a password yet)" in page
    assert roles(acme)["sam@acme.test"] == Role.AGENT

    client.logout()
    form = client.get(link.group(2), follow=True)
    assert b"Set my password" in form.content
    response = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a long new passphrase", "new_password2": "a long new passphrase"},
        follow=True,
    )
    assert b"Your password is set" in response.content
    assert client.login(username="sam@acme.test", password="a long new passphrase")
    # The link was for one use.
    assert b"has expired or was already used" in client.get(link.group(2), follow=True).content


def test_someone_with_an_account_is_added_without_a_new_one(client, maya, omar, acme):
    client.force_login(maya)
    response = client.post(team_url(acme), {"email": "OMAR@example.com", "role": Role.MARKETER})
    assert response.status_code == 302
    assert get_user_model().objects.filter(email__iexact="omar@example.com").count() == 1
    page = client.get(team_url(acme)).content.decode()
    assert "omar@example.com is now marketing user on Acme." in page
    assert "Send them this link" not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not an email", "role": Role.MARKETER}, "Enter a valid email address."),
        ({"email": "x@acme.test", "role": "owner"}, "Select a valid choice."),
        (
            {"email": "maya@example.com", "role": Role.MARKETER},
            "maya@example.com already belongs to Acme.",
        ),
    ],
)
def test_bad_input_adds_nobody(client, maya, acme, data, message):
    client.force_login(maya)
    before = roles(acme)
    users = get_user_model().objects.count()
    response = client.post(team_url(acme), data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert roles(acme) == before
    assert get_user_model().objects.count() == users


def test_roles_change_but_the_last_admin_stays(client, maya, acme):
    client.force_login(maya)
    client.post(team_url(acme), {"email": "mia@acme.test", "role": Role.MARKETER})
    mia = Membership.objects.get(site=acme, user__email="mia@acme.test")
    mine = Membership.objects.get(site=acme, user=maya)

    response = client.post(f"{team_url(acme)}{mine.pk}/role/", {"role": Role.MARKETER}, follow=True)
    assert b"A site needs at least one marketing admin." in response.content
    response = client.post(f"{team_url(acme)}{mine.pk}/remove/", follow=True)
    assert b"A site needs at least one marketing admin." in response.content
    assert roles(acme)["maya@example.com"] == Role.ADMIN

    client.post(f"{team_url(acme)}{mia.pk}/role/", {"role": Role.ADMIN})
    assert roles(acme)["mia@acme.test"] == Role.ADMIN
    response = client.post(f"{team_url(acme)}{mine.pk}/remove/")
    assert response["Location"] == "/"
    assert "maya@example.com" not in roles(acme)
    assert client.get(team_url(acme)).status_code == 404


def test_a_bad_role_changes_nothing(client, maya, acme):
    client.force_login(maya)
    mine = Membership.objects.get(site=acme, user=maya)
    response = client.post(f"{team_url(acme)}{mine.pk}/role/", {"role": "god"}, follow=True)
    assert b"Choose one of the roles." in response.content
    assert roles(acme)["maya@example.com"] == Role.ADMIN


@pytest.mark.parametrize("role", [Role.MARKETER, Role.AGENT])
def test_only_admins_manage_the_team(client, acme, role):
    user = get_user_model().objects.create_user("kim", email="kim@acme.test", password=PASSWORD)
    services.add_member(site=acme, user=user, role=role)
    client.force_login(user)
    assert client.get(team_url(acme)).status_code == 404
    assert client.post(team_url(acme), {"email": "x@y.test", "role": Role.ADMIN}).status_code == 404
    mine = Membership.objects.get(site=acme, user=user)
    assert client.post(f"{team_url(acme)}{mine.pk}/role/", {"role": Role.ADMIN}).status_code == 404
    assert roles(acme)["kim@acme.test"] == role


def test_another_sites_admin_cannot_touch_acmes_team(client, maya, omar, acme, globex):
    mine = Membership.objects.get(site=acme, user=maya)
    client.force_login(omar)
    assert client.get(team_url(acme)).status_code == 404
    # Acme's membership id under Globex's URL: not Globex's, so not found.
    assert client.post(f"{team_url(globex)}{mine.pk}/remove/").status_code == 404
    assert (
        client.post(f"{team_url(globex)}{mine.pk}/role/", {"role": Role.AGENT}).status_code == 404
    )
    assert roles(acme) == {"maya@example.com": Role.ADMIN}
    client.logout()
    assert client.get(team_url(acme))["Location"].startswith("/login")
