"""A site whose chat is switched off shows no widget and starts no conversation."""

import pytest

from widget.models import Conversation

pytestmark = pytest.mark.browser


def test_it_shows_nothing_when_the_sites_chat_is_disabled(chat, demo_site):
    demo_site.chat_enabled = False
    demo_site.save(update_fields=["chat_enabled"])
    requests = []
    chat.page.on("request", lambda request: requests.append(request.url))

    with chat.page.expect_response(lambda r: r.url.endswith("/sessions")) as session:
        chat.visit()
        chat.page.evaluate("DynChat.open()")

    assert session.value.json()["chat_enabled"] is False
    # Give a would-be conversation start (trigger: 0 s, plus the open() above) time to happen.
    chat.page.wait_for_timeout(500)
    assert chat.page.locator("dynchat-widget").count() == 0
    assert not [url for url in requests if "/conversations" in url]
    assert not Conversation.objects.exists()
