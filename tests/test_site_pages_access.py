"""Who may open a site's branding, settings and install pages, and what everyone else gets.

Branding and install: the site's marketing admins and marketing users. Settings: its marketing
admins. Everyone else, including a member of another site asking for Acme's page by its
address, gets a 404 that names nothing of Acme's, and a POST from them changes nothing.
"""

import pytest
from conftest import PASSWORD, _user

from dialogues import services
from dialogues.models import Membership, Site

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

Role = Membership.Role
PAGES = ["branding", "install", "settings"]
ALLOWED = {
    "branding": {"admin", "marketer"},
    "install": {"admin", "marketer"},
    "settings": {"admin"},
}
# What each page's form would change if a refused POST went through.
POSTS = {
    "branding": {
        "bot_name": "Hijacked",
        "header": "x",
        "primary_color": "#000000",
        "text_color": "#ffffff",
        "font_family": "serif",
        "position": "left",
        "padding_px": "0",
        "response_delay_ms": "0",
    },
    "install": {},
    "settings": {
        "allowed_origins": "https://evil.test",
        "blocked_email_domains": "",
        "privacy_url": "https://evil.test/",
    },
}


def url(site_id: int, page: str) -> str:
    return f"/sites/{site_id}/{page}/"


@pytest.fixture
def personas(acme, maya, omar, globex, outsider):
    """Everyone who might ask for Acme's pages. Omar administers Globex, not Acme."""
    marketer, agent = _user("mia"), _user("sam")
    services.add_member(site=acme, user=marketer, role=Role.MARKETER)
    services.add_member(site=acme, user=agent, role=Role.AGENT)
    return {
        "admin": maya,
        "marketer": marketer,
        "agent": agent,
        "outsider": outsider,
        "other site's admin": omar,
    }


def as_(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def acme_state(acme) -> tuple:
    site = Site.objects.get(pk=acme.pk)
    return (site.theme, site.allowed_origins, site.privacy_url, site.chat_enabled)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", ["admin", "marketer", "agent", "outsider", "other site's admin"])
def test_only_the_sites_own_roles_open_each_page(client, acme, personas, page, who):
    response = as_(client, personas[who]).get(url(acme.pk, page))

    if who in ALLOWED[page]:
        assert response.status_code == 200
        assert "Acme" in response.content.decode()
    else:
        assert response.status_code == 404
        body = response.content.decode()
        assert "Acme" not in body
        assert acme.public_key not in body


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", ["agent", "outsider", "other site's admin"])
def test_a_refused_post_changes_nothing(client, acme, personas, page, who):
    before = acme_state(acme)

    response = as_(client, personas[who]).post(url(acme.pk, page), POSTS[page])

    assert response.status_code in (404, 405)
    assert acme_state(acme) == before


def test_a_marketing_user_cannot_post_the_admins_settings(client, acme, personas):
    before = acme_state(acme)

    response = as_(client, personas["marketer"]).post(url(acme.pk, "settings"), POSTS["settings"])

    assert response.status_code == 404
    assert acme_state(acme) == before


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, acme, page):
    response = client.get(url(acme.pk, page))

    assert response.status_code == 302
    assert response.url.startswith("/login/")


@pytest.mark.parametrize("page", PAGES)
def test_a_site_that_does_not_exist_is_a_404_like_any_other(client, personas, page):
    assert as_(client, personas["admin"]).get(url(999_999, page)).status_code == 404


def test_another_sites_admin_sees_their_own_pages_only(client, acme, globex, personas):
    client = as_(client, personas["other site's admin"])

    assert client.get(url(globex.pk, "branding")).status_code == 200
    assert client.get(url(globex.pk, "settings")).status_code == 200
    assert client.get(url(acme.pk, "branding")).status_code == 404


def test_the_pages_are_linked_for_those_who_may_open_them(client, acme, personas):
    admin_home = as_(client, personas["admin"]).get("/").content.decode()
    for page in PAGES:
        assert url(acme.pk, page) in admin_home
    admin_list = client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    assert url(acme.pk, "settings") in admin_list
    client.logout()

    marketer_home = as_(client, personas["marketer"]).get("/").content.decode()
    assert url(acme.pk, "branding") in marketer_home
    assert url(acme.pk, "install") in marketer_home
    assert url(acme.pk, "settings") not in marketer_home
    marketer_list = client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    assert url(acme.pk, "branding") in marketer_list
    assert url(acme.pk, "settings") not in marketer_list
    client.logout()

    agent_home = as_(client, personas["agent"]).get("/").content.decode()
    assert url(acme.pk, "branding") not in agent_home
    assert url(acme.pk, "install") not in agent_home
