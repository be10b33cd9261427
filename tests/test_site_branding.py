"""A marketer brands their site's widget: colours, font, position, bot, avatar, sound.

What they save is what the widget API hands the widget; what they get wrong is shown next to
the field and nothing is saved.
"""

import io
import random

import pytest
from conftest import ACME_ORIGIN, PASSWORD
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dialogues import services
from dialogues.avatars import AvatarInvalid, avatar_content_type
from dialogues.models import Site
from dialogues.theme import Theme

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

GOOD = {
    "bot_name": "Ada",
    "header": "Questions? Ask Ada",
    "primary_color": "#0a7f3f",
    "text_color": "#fefefe",
    "font_family": "Inter, system-ui, sans-serif",
    "position": "left",
    "padding_px": "32",
    "response_delay_ms": "250",
    "new_message_sound": "on",
}


def image_bytes(kind="PNG", size=(64, 64), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, kind)
    return buffer.getvalue()


def upload(data: bytes, name="avatar.png", content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def marketer_client(client, maya):
    client.login(username=maya.username, password=PASSWORD)
    return client


def url(site) -> str:
    return f"/sites/{site.pk}/branding/"


def fresh(site) -> Site:
    return Site.objects.get(pk=site.pk)


def test_it_shows_the_current_theme_in_the_form_and_the_preview(marketer_client, acme):
    page = marketer_client.get(url(acme)).content.decode()

    assert 'value="DynChat"' in page  # the bot name
    assert 'value="#2457d6"' in page
    assert 'id="widget-preview"' in page
    assert "--p:#2457d6" in page


def test_it_saves_the_branding_and_the_widget_gets_it(marketer_client, acme, acme_widget):
    response = marketer_client.post(url(acme), GOOD)

    assert response.status_code == 302
    theme = fresh(acme).theme
    assert theme["bot_name"] == "Ada"
    assert theme["position"] == "left"
    assert theme["padding_px"] == 32
    assert theme["new_message_sound"] is True
    session_theme = acme_widget.start_session()["theme"]
    assert session_theme["primary_color"] == "#0a7f3f"
    assert session_theme["font_family"] == "Inter, system-ui, sans-serif"
    assert session_theme["response_delay_ms"] == 250
    assert session_theme["avatar_url"] is None
    assert "Branding saved" in marketer_client.get(response.url).content.decode()


def test_a_theme_stored_before_the_new_fields_still_works(acme, acme_widget):
    Site.objects.filter(pk=acme.pk).update(theme={"bot_name": "Old", "position": "left"})

    theme = acme_widget.start_session()["theme"]

    assert theme["bot_name"] == "Old"
    assert theme["padding_px"] == 20
    assert theme["new_message_sound"] is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bot_name", "", "This field is required."),
        ("bot_name", "x" * 41, "at most 40 characters"),
        ("header", "x" * 81, "at most 80 characters"),
        ("primary_color", "red", "Use a colour written like #2457d6."),
        ("text_color", "#12345", "Use a colour written like #2457d6."),
        ("font_family", "Inter; background:url(x)", "Use font names separated by commas"),
        ("position", "top", "Select a valid choice."),
        ("padding_px", "-1", "greater than or equal to 0"),
        ("padding_px", "500", "less than or equal to 120"),
        ("padding_px", "ten", "Enter a whole number."),
        ("response_delay_ms", "9000", "less than or equal to 5000"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(
    marketer_client, acme, field, value, message
):
    before = fresh(acme).theme

    response = marketer_client.post(url(acme), {**GOOD, field: value})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved" in page
    assert message in page
    assert f'id="id_{field}_error1"' in page
    assert fresh(acme).theme == before


def test_it_stores_a_valid_avatar_and_serves_it_to_the_widget(
    marketer_client, acme, acme_widget, client
):
    png = image_bytes()

    marketer_client.post(url(acme), {**GOOD, "avatar": upload(png)})

    site = fresh(acme)
    assert bytes(site.avatar) == png
    assert site.avatar_content_type == "image/png"
    avatar_url = acme_widget.start_session()["theme"]["avatar_url"]
    assert avatar_url == (
        f"http://testserver/api/widget/v1/sites/{acme.public_key}/avatar?v={site.avatar_version}"
    )
    client.logout()
    # Fetched by an <img> on the customer's page: no Origin header, no cookies.
    served = client.get(avatar_url)
    assert served.status_code == 200
    assert served.content == png
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Access-Control-Allow-Origin" not in served
    # Asked again with what the browser has: nothing to send.
    again = client.get(avatar_url, HTTP_IF_NONE_MATCH=served["ETag"])
    assert again.status_code == 304


def test_a_new_avatar_gets_a_new_address_and_the_old_one_is_not_cached_for_good(
    marketer_client, acme, acme_widget, client
):
    marketer_client.post(url(acme), {**GOOD, "avatar": upload(image_bytes(color=(1, 2, 3)))})
    first = acme_widget.start_session()["theme"]["avatar_url"]
    jpeg = image_bytes("JPEG", color=(9, 9, 200))

    marketer_client.post(url(acme), {**GOOD, "avatar": upload(jpeg, "me.jpg", "image/jpeg")})

    second = acme_widget.start_session()["theme"]["avatar_url"]
    assert second != first
    stale = client.get(first)
    assert stale.content == jpeg
    assert stale["Content-Type"] == "image/jpeg"
    assert stale["Cache-Control"] == "public, no-cache"


def test_saving_other_fields_keeps_the_avatar_and_remove_takes_it_away(
    marketer_client, acme, acme_widget, client
):
    marketer_client.post(url(acme), {**GOOD, "avatar": upload(image_bytes("WEBP"), "a.webp")})
    assert fresh(acme).avatar_content_type == "image/webp"

    marketer_client.post(url(acme), {**GOOD, "bot_name": "Bob"})
    assert fresh(acme).avatar_content_type == "image/webp"
    assert 'alt="The current avatar"' in marketer_client.get(url(acme)).content.decode()

    marketer_client.post(url(acme), {**GOOD, "remove_avatar": "on"})
    site = fresh(acme)
    assert site.avatar is None
    assert (site.avatar_content_type, site.avatar_version) == ("", "")
    assert acme_widget.start_session()["theme"]["avatar_url"] is None
    gone = client.get(f"/api/widget/v1/sites/{acme.public_key}/avatar")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "no_avatar"


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"GIF89a" + b"\x00" * 40, "avatar.gif", "not a PNG, JPEG or WebP image"),
        (b"#!/bin/sh\necho this is not a picture\n", "avatar.png", "not a PNG, JPEG or WebP"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "avatar.png", "not a PNG, JPEG or WebP"),
        (image_bytes()[:60], "cut.png", "damaged or incomplete"),
        (image_bytes(size=(8, 8)), "tiny.png", "use between 32 and 1024 pixels a side"),
        (image_bytes(size=(2000, 40)), "wide.png", "use between 32 and 1024 pixels a side"),
        (b"", "empty.png", "The submitted file is empty."),
    ],
)
def test_it_refuses_a_file_that_is_not_a_usable_image(marketer_client, acme, data, name, message):
    response = marketer_client.post(url(acme), {**GOOD, "avatar": upload(data, name)})

    assert response.status_code == 400
    assert message in response.content.decode()
    site = fresh(acme)
    assert site.avatar is None
    # The rest of the form is not saved either.
    assert site.theme["bot_name"] == "DynChat"


def test_it_refuses_an_avatar_over_256_kb(marketer_client, acme):
    # Random pixels do not compress: a 1000 by 1000 PNG of noise is well over the limit.
    noise = Image.frombytes("RGB", (1000, 1000), random.Random(4).randbytes(3_000_000))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    assert len(buffer.getvalue()) > 256 * 1024

    response = marketer_client.post(url(acme), {**GOOD, "avatar": upload(buffer.getvalue())})

    assert response.status_code == 400
    assert "the limit is 256 KB" in response.content.decode()
    assert fresh(acme).avatar is None


def test_the_avatar_check_reads_the_bytes_not_the_name():
    assert avatar_content_type(image_bytes("JPEG")) == "image/jpeg"
    assert avatar_content_type(image_bytes("WEBP")) == "image/webp"
    with pytest.raises(AvatarInvalid, match="limit is 256 KB"):
        avatar_content_type(b"\x89PNG" + b"\x00" * (256 * 1024))


def test_the_service_refuses_a_bad_theme_or_avatar_and_writes_nothing(acme):
    before = fresh(acme).theme

    with pytest.raises(ValueError, match="primary_color"):
        services.update_branding(site_id=acme.pk, theme={**before, "primary_color": "blue"})
    with pytest.raises(AvatarInvalid):
        services.update_branding(site_id=acme.pk, theme=Theme().model_dump(), avatar=b"nope")

    site = fresh(acme)
    assert site.theme == before
    assert site.avatar is None


def test_the_avatar_address_of_an_unknown_site_is_a_404_and_other_methods_are_refused(
    client, acme, settings
):
    settings.ALLOWED_HOSTS = ["*"]
    missing = client.get("/api/widget/v1/sites/no-such-key/avatar")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_site"

    posted = client.post(f"/api/widget/v1/sites/{acme.public_key}/avatar", HTTP_ORIGIN=ACME_ORIGIN)
    assert posted.status_code == 405
    assert posted.json()["error"]["code"] == "method_not_allowed"


def test_the_memoised_site_does_not_carry_the_avatar_bytes(marketer_client, acme, memo_on):
    from dialogues import selectors

    marketer_client.post(url(acme), {**GOOD, "avatar": upload(image_bytes())})
    site = selectors.site_for_key(acme.public_key)
    # Every session reads this object; the image is read by the avatar route alone.
    assert "avatar" in site.get_deferred_fields()
    assert site.avatar_version == fresh(acme).avatar_version
