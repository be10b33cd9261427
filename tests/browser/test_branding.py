"""A marketer rebrands the widget in the browser: the preview follows the form before saving,
and after saving the widget on the customer's page shows the new look."""

import io

import pytest
from conftest import PASSWORD, _user
from PIL import Image
from playwright.sync_api import expect

from dialogues import services
from dialogues.models import Membership, Site

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def avatar_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (250, 180, 0)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def marketer(demo_site):
    user = _user("mia")
    services.add_member(site=demo_site, user=user, role=Membership.Role.MARKETER)
    return user


def sign_in(page, url, user):
    page.goto(url)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_marketers_branding_shows_in_the_preview_and_then_in_the_widget(
    page, live_server, demo_site, marketer, chat
):
    sign_in(page, f"{live_server.url}/sites/{demo_site.pk}/branding/", marketer)
    expect(page.get_by_role("heading", name="DynChat demo site: branding")).to_be_visible()
    preview = page.locator("#widget-preview")

    page.get_by_label("Main colour", exact=True).fill("#0a7f3f")
    page.get_by_label("Bot name").fill("Ada from Acme")
    page.get_by_label("Header label").fill("Talk to Acme")
    page.get_by_label("Bottom left").check()
    page.get_by_label("Distance from the corner (px)").fill("40")
    page.get_by_label("Play a sound on new messages").check()
    page.get_by_label("Avatar").set_input_files(
        {"name": "ada.png", "mimeType": "image/png", "buffer": avatar_png()}
    )

    # The preview follows before anything is saved.
    expect(preview.locator("[data-preview=bot_name]")).to_have_text("Ada from Acme")
    expect(preview.locator("[data-preview=header]")).to_have_text("Talk to Acme")
    expect(preview.locator(".pw")).to_have_class("pw left")
    expect(preview.locator(".pw-head")).to_have_css("background-color", "rgb(10, 127, 63)")
    expect(preview.locator(".pw")).to_have_css("left", "40px")
    expect(preview.locator(".pw-av")).to_be_visible()
    assert Site.objects.get(pk=demo_site.pk).theme["bot_name"] == "DynChat"

    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_text("Branding saved")).to_be_visible()
    expect(page.get_by_role("img", name="The current avatar")).to_be_visible()

    # A visitor on the customer's page meets the new look.
    chat.visit()
    chat.bot_says("What brings you here today?")
    widget = chat.widget
    expect(widget.locator(".head strong")).to_have_text("Talk to Acme")
    expect(widget.locator(".head span")).to_have_text("Ada from Acme")
    expect(widget.locator(".head")).to_have_css("background-color", "rgb(10, 127, 63)")
    expect(widget.locator(".w")).to_have_css("left", "40px")
    expect(widget.locator(".w")).to_have_css("bottom", "40px")
    avatar = widget.locator("img.av")
    expect(avatar).to_be_visible()
    assert "/avatar?v=" in avatar.get_attribute("src")
    assert avatar.evaluate("img => img.complete && img.naturalWidth") == 96


def test_the_privacy_link_opens_in_a_new_tab_and_sound_without_web_audio_breaks_nothing(
    demo_site, chat
):
    Site.objects.filter(pk=demo_site.pk).update(
        privacy_url="https://www.example.com/privacy",
        theme={**demo_site.theme, "new_message_sound": True},
    )
    # A browser without Web Audio: the chime must be skipped quietly (the page fixture fails
    # the test on any page error).
    chat.page.add_init_script("delete window.AudioContext; delete window.webkitAudioContext;")

    chat.visit()
    chat.bot_says("What brings you here today?")
    chat.choose("I'd like a demo")
    chat.bot_says("What's your first name?")

    link = chat.widget.get_by_role("link", name="Privacy policy")
    expect(link).to_have_attribute("href", "https://www.example.com/privacy")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener")


def test_a_privacy_link_that_is_not_a_web_address_is_never_shown(demo_site, chat):
    # Stored behind the form's back (the form and the service refuse it): the widget still
    # checks.
    Site.objects.filter(pk=demo_site.pk).update(privacy_url="javascript:alert(1)")

    chat.visit()
    chat.bot_says("What brings you here today?")

    expect(chat.widget.locator(".foot")).to_have_count(0)
