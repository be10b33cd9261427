"""A marketing admin configures their site: where the widget may run, whether it chats, the
email domains its capture cards refuse, and the privacy link shown in the chat."""

import re

import pytest
from conftest import ACME_ORIGIN, PASSWORD

from dialogues import services
from dialogues.email_domains import FREE_MAIL_DOMAINS, DomainInvalid
from dialogues.models import Site

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

GOOD = {
    "allowed_origins": "https://www.acme.test\nhttps://shop.acme.test:8443/\n\n",
    "chat_enabled": "on",
    "blocked_email_domains": "Gmail.com\n@yahoo.com\n*.mail.example\n",
    "privacy_url": "https://www.acme.test/privacy",
}


@pytest.fixture
def admin_client(client, maya):
    client.login(username=maya.username, password=PASSWORD)
    return client


def url(site) -> str:
    return f"/sites/{site.pk}/settings/"


def state(site) -> tuple:
    site = Site.objects.get(pk=site.pk)
    return (site.allowed_origins, site.chat_enabled, site.blocked_email_domains, site.privacy_url)


def test_it_shows_the_current_settings(admin_client, acme):
    Site.objects.filter(pk=acme.pk).update(blocked_email_domains=["gmail.com", "aol.com"])

    page = admin_client.get(url(acme)).content.decode()

    assert ACME_ORIGIN in page
    assert "gmail.com\naol.com" in page
    assert re.search(r'<input type="checkbox" name="chat_enabled"[^>]* checked', page)


def test_it_saves_the_settings_normalised(admin_client, acme, acme_widget):
    response = admin_client.post(url(acme), GOOD)

    assert response.status_code == 302
    assert state(acme) == (
        ["https://www.acme.test", "https://shop.acme.test:8443"],
        True,
        ["gmail.com", "yahoo.com", "mail.example"],
        "https://www.acme.test/privacy",
    )
    assert acme_widget.start_session()["theme"]["privacy_url"] == "https://www.acme.test/privacy"


def test_switching_the_chat_off_reaches_the_widget(admin_client, acme, acme_widget):
    admin_client.post(url(acme), {**GOOD, "chat_enabled": ""})

    assert Site.objects.get(pk=acme.pk).chat_enabled is False
    assert acme_widget.start_session()["chat_enabled"] is False


def test_an_origin_removed_from_the_list_is_refused_by_the_widget_api(
    admin_client, acme, acme_widget
):
    admin_client.post(url(acme), {**GOOD, "allowed_origins": "https://other.acme.test"})

    response = acme_widget.post("/sessions", {"page_url": "https://www.acme.test/"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("field", "value", "messages"),
    [
        (
            "allowed_origins",
            "https://www.acme.test\nwww.acme.test\nhttps://acme.test/pricing",
            [
                "Line 2: &#x27;www.acme.test&#x27; must look like https://www.example.com.",
                "Line 3: &#x27;https://acme.test/pricing&#x27; must be an origin only",
            ],
        ),
        ("allowed_origins", "ftp://files.acme.test", ["Line 1: "]),
        (
            "blocked_email_domains",
            "gmail.com\nnot a domain\nsomeone@gmail.com\nlocalhost\n-bad-.com",
            [
                "Line 2: &#x27;not a domain&#x27; is not a domain name such as example.com.",
                "Line 3: &#x27;someone@gmail.com&#x27; is not a domain; write only the part",
                "Line 4: &#x27;localhost&#x27; is not a domain name",
                "Line 5: &#x27;-bad-.com&#x27; is not a domain name",
            ],
        ),
        (
            "privacy_url",
            "javascript:alert(1)",
            ["Use a web address starting with https:// or http://."],
        ),
        ("privacy_url", "ftp://acme.test/privacy", ["Use a web address starting with https://"]),
        ("privacy_url", "https://exa mple.com/privacy", ["This is not a valid web address."]),
        ("privacy_url", "https://acme.test/" + "p" * 500, ["at most 500 characters"]),
    ],
)
def test_bad_input_says_what_is_wrong_on_which_line_and_saves_nothing(
    admin_client, acme, field, value, messages
):
    before = state(acme)

    response = admin_client.post(url(acme), {**GOOD, field: value})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved" in page
    for message in messages:
        assert message in page
    assert state(acme) == before


def test_one_click_fills_in_the_free_mail_providers_without_saving(admin_client, acme):
    before = state(acme)

    response = admin_client.post(
        url(acme),
        {**GOOD, "blocked_email_domains": "example.org\ngmail.com", "fill_free_mail": "1"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Common free mail providers added below. Save to apply them." in page
    listed = re.search(r'name="blocked_email_domains"[^>]*>(.*?)</textarea>', page, re.S)[1]
    lines = listed.strip().splitlines()
    assert lines[:2] == ["example.org", "gmail.com"]
    assert {"outlook.com", "yahoo.com", "icloud.com"} <= set(lines)
    assert lines.count("gmail.com") == 1  # already there: not added twice
    assert "Nothing was saved" not in page
    assert state(acme) == before


def test_the_free_mail_list_is_valid_as_it_stands(admin_client, acme):
    response = admin_client.post(
        url(acme), {**GOOD, "blocked_email_domains": "\n".join(FREE_MAIL_DOMAINS)}
    )

    assert response.status_code == 302
    assert state(acme)[2] == list(FREE_MAIL_DOMAINS)


def test_an_empty_list_and_no_privacy_link_are_allowed(admin_client, acme, acme_widget):
    admin_client.post(url(acme), {**GOOD, "blocked_email_domains": "", "privacy_url": ""})

    assert state(acme)[2:] == ([], "")
    assert acme_widget.start_session()["theme"]["privacy_url"] is None


def test_the_service_refuses_bad_settings_and_writes_nothing(acme):
    before = state(acme)
    good = {
        "allowed_origins": [ACME_ORIGIN],
        "chat_enabled": False,
        "blocked_email_domains": ["gmail.com"],
        "privacy_url": "",
    }

    with pytest.raises(ValueError, match="must look like"):
        services.update_site_settings(site_id=acme.pk, **{**good, "allowed_origins": ["acme"]})
    with pytest.raises(DomainInvalid):
        services.update_site_settings(site_id=acme.pk, **{**good, "blocked_email_domains": ["a b"]})
    with pytest.raises(ValueError, match="https://"):
        services.update_site_settings(
            site_id=acme.pk, **{**good, "privacy_url": "data:text/html,hi"}
        )

    assert state(acme) == before


def test_international_domains_are_stored_in_their_ascii_form(acme):
    services.update_site_settings(
        site_id=acme.pk,
        allowed_origins=[ACME_ORIGIN],
        chat_enabled=True,
        blocked_email_domains=["Bücher.example", "bücher.example"],
        privacy_url="",
    )

    assert state(acme)[2] == ["xn--bcher-kva.example"]
