"""The install page gives a marketer the one tag to paste, and says what stops it working."""

import pytest
from conftest import PASSWORD, _user

from dialogues import services
from dialogues.models import Membership, Site

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def install_page(client, user, site) -> str:
    client.login(username=user.username, password=PASSWORD)
    response = client.get(f"/sites/{site.pk}/install/")
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_the_snippet_with_the_sites_key_and_a_copy_button(client, maya, acme, settings):
    settings.SITE_ROOT = "https://chat.example.com"

    page = install_page(client, maya, acme)

    assert (
        "&lt;script src=&quot;https://chat.example.com/static/widget/dynchat.js&quot; "
        f"data-site=&quot;{acme.public_key}&quot; async&gt;&lt;/script&gt;"
    ) in page
    assert 'data-copy="snippet"' in page
    assert "The widget answers on: <code>https://www.acme.test</code>" in page
    assert "Chat is enabled." in page


def test_it_warns_when_the_widget_could_not_run(client, maya, acme):
    Site.objects.filter(pk=acme.pk).update(allowed_origins=[], chat_enabled=False)

    page = install_page(client, maya, acme)

    assert "No allowed origins yet" in page
    assert "Chat is switched off" in page
    assert f"/sites/{acme.pk}/settings/" in page


def test_a_marketing_user_is_told_who_can_change_the_settings(client, acme):
    mia = _user("mia")
    services.add_member(site=acme, user=mia, role=Membership.Role.MARKETER)

    page = install_page(client, mia, acme)

    assert "A marketing admin of this site can change these." in page
    assert f"/sites/{acme.pk}/settings/" not in page
