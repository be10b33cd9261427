"""Maya previews her draft in the real widget: it runs the draft (not what is live), applies the
site's rules, and records nothing. The preview API answers only to a fresh key of hers."""

import copy
import json
import re

import pytest
from django.core import signing

from dialogues import services
from dialogues.models import Dialogue, Membership
from tests.conftest import EVERY_CARD_FLOW
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def draft(acme):
    return Dialogue.objects.create(site=acme, name="Demo flow", flow=copy.deepcopy(EVERY_CARD_FLOW))


class PreviewClient:
    def __init__(self, client, dialogue):
        self.client, self.dialogue = client, dialogue
        frame = client.get(f"/sites/{dialogue.site_id}/dialogues/{dialogue.pk}/preview/frame/")
        assert frame.status_code == 200
        html = frame.content.decode()
        self.key = re.search(r'data-site="([^"]+)"', html).group(1)
        self.api_root = re.search(r'data-api="([^"]+)"', html).group(1)
        self.base = f"/preview/api/widget/v1/sites/{self.key}"

    def post(self, path, body, token=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = self.client.post(
            self.base + path, json.dumps(body), content_type="application/json", **headers
        )
        return response.status_code, response.json()

    def start(self):
        status, session = self.post("/sessions", {"page_url": "https://www.acme.test/"})
        assert status == 200
        status, step = self.post(
            "/conversations",
            {
                "visitor_id": session["visitor_id"],
                "dialogue_id": self.dialogue.pk,
                "page_url": "https://www.acme.test/",
            },
        )
        assert status == 201
        return session, step

    def answer(self, step, value, token):
        prompt = step["prompt"]
        return self.post(
            f"/conversations/{step['conversation_id']}/answers",
            {"card_id": prompt["card_id"], "step": prompt["step"], "value": value},
            token=token,
        )


def test_the_panel_frames_the_real_widget_pointed_at_the_preview_api(client, maya, draft):
    client.force_login(maya)
    page = client.get(f"/sites/{draft.site_id}/dialogues/{draft.pk}/preview/").content.decode()
    assert f'src="/sites/{draft.site_id}/dialogues/{draft.pk}/preview/frame/"' in page
    assert "Restart the preview" in page
    preview = PreviewClient(client, draft)
    assert preview.api_root == "http://testserver/preview"
    # Each frame gets its own key, so a restart leaves the last run's stored conversation behind.
    assert PreviewClient(client, draft).key != preview.key


def test_a_whole_conversation_runs_the_draft_and_records_nothing(client, maya, acme, draft):
    client.force_login(maya)
    preview = PreviewClient(client, draft)
    session, step = preview.start()
    assert session["theme"]["bot_name"]
    assert session["dialogue"]["trigger"] == {"type": "time_on_page", "seconds": 0}
    assert [m["text"] for m in step["messages"]] == ["Hi there!", "Want a demo?"]
    token = step["token"]
    status, step = preview.answer(step, "yes", token)
    assert status == 200
    assert step["answer"] == {"text": "Yes please"}
    _, step = preview.answer(step, "Ana", token)
    _, step = preview.answer(step, "ana@bigco.com", token)
    _, step = preview.answer(step, "+33 1 23 45 67 89", token)
    assert step["prompt"]["kind"] == "booking"
    _, step = preview.answer(step, "skip", token)
    assert step["done"] is True
    assert step["events"] == []
    detail = client.get(
        f"{preview.base}/conversations/{step['conversation_id']}",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert detail.json()["done"] is True
    for model in (Visitor, Conversation, TranscriptEntry, ConversationEvent):
        assert model.objects.count() == 0, model


def test_it_runs_the_draft_not_the_live_version(client, maya, draft):
    services.publish_dialogue(dialogue_id=draft.pk, user=maya)
    flow = copy.deepcopy(EVERY_CARD_FLOW)
    flow["cards"][0]["text"] = "Hello from the new draft"
    Dialogue.objects.filter(pk=draft.pk).update(flow=flow)
    client.force_login(maya)
    _, step = PreviewClient(client, draft).start()
    assert step["messages"][0]["text"] == "Hello from the new draft"


def test_the_transcript_comes_back_on_reload(client, maya, draft):
    client.force_login(maya)
    preview = PreviewClient(client, draft)
    _, step = preview.start()
    preview.answer(step, "no", step["token"])
    response = client.get(
        f"{preview.base}/conversations/{step['conversation_id']}",
        HTTP_AUTHORIZATION=f"Bearer {step['token']}",
    )
    assert [line["text"] for line in response.json()["transcript"]] == [
        "Hi there!",
        "Want a demo?",
        "No thanks",
        "Thanks, talk soon.",
    ]
    wrong = client.get(
        f"{preview.base}/conversations/{step['conversation_id']}",
        HTTP_AUTHORIZATION="Bearer not-the-token",
    )
    assert wrong.status_code == 404


def test_the_sites_blocked_email_domains_apply_in_preview(client, maya, acme, draft):
    acme.blocked_email_domains = ["gmail.com"]
    acme.save(update_fields=["blocked_email_domains"])
    client.force_login(maya)
    preview = PreviewClient(client, draft)
    _, step = preview.start()
    token = step["token"]
    _, step = preview.answer(step, "yes", token)
    _, step = preview.answer(step, "Ana", token)
    status, body = preview.answer(step, "ana@gmail.com", token)
    assert status == 422
    assert body["error"]["code"] == "blocked_email_domain"


def test_bad_input_gets_the_widget_apis_errors(client, maya, draft):
    client.force_login(maya)
    preview = PreviewClient(client, draft)
    _, step = preview.start()
    status, body = preview.answer(step, "maybe", step["token"])
    assert status == 422
    assert body["error"]["message"] == "Please pick one of the offered answers."
    status, body = preview.post("/sessions", {"page_url": "nope"})
    assert status == 400
    assert body["error"]["field"] == "page_url"


def test_an_invalid_draft_shows_its_problems_instead_of_the_widget(client, maya, draft):
    flow = copy.deepcopy(EVERY_CARD_FLOW)
    flow["cards"][0]["text"] = ""
    Dialogue.objects.filter(pk=draft.pk).update(flow=flow)
    client.force_login(maya)
    page = client.get(f"/sites/{draft.site_id}/dialogues/{draft.pk}/preview/").content.decode()
    assert "The draft cannot run until these are fixed" in page
    assert "Card “hello”" in page
    assert "<iframe" not in page


def test_a_forged_or_expired_key_or_a_removed_marketer_gets_nothing(client, maya, acme, draft):
    client.force_login(maya)
    preview = PreviewClient(client, draft)
    forged = signing.dumps({"u": maya.pk, "d": draft.pk, "n": "x"}, salt="something else")
    response = client.post(
        f"/preview/api/widget/v1/sites/{forged}/sessions",
        json.dumps({"page_url": "https://www.acme.test/"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "preview_expired"
    Membership.objects.filter(site=acme, user=maya).delete()
    status, _ = preview.post("/sessions", {"page_url": "https://www.acme.test/"})
    assert status == 403


def test_only_the_sites_marketers_open_a_preview(client, omar, outsider, draft):
    for user in (omar, outsider):
        client.force_login(user)
        for path in ("preview/", "preview/frame/"):
            response = client.get(f"/sites/{draft.site_id}/dialogues/{draft.pk}/{path}")
            assert response.status_code == 404
            assert b"Demo flow" not in response.content
    client.logout()
    response = client.get(f"/sites/{draft.site_id}/dialogues/{draft.pk}/preview/")
    assert response.status_code == 302
