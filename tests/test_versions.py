"""Publishing freezes a dialogue's draft into a numbered version. A visitor finishes the version
they started on, whatever Maya publishes or unpublishes meanwhile."""

import copy

import pytest
from conftest import EVERY_CARD_FLOW, make_published_dialogue

from dialogues import services
from dialogues.flow.cards import FlowInvalid, parse_flow
from dialogues.models import Dialogue, DialogueVersion

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# Version 2: other words, other cards, and no longer asks for a phone number.
SECOND_FLOW = {
    "start": "greet",
    "cards": [
        {"id": "greet", "type": "message", "text": "Welcome to Acme v2.", "next": "interest"},
        {
            "id": "interest",
            "type": "question",
            "text": "Shall we talk?",
            "choices": [{"label": "Sure", "value": "sure", "next": "done"}],
        },
        {"id": "done", "type": "end", "text": "Talk soon (v2)."},
    ],
}


def publish(dialogue, flow, user=None):
    dialogue.flow = flow
    dialogue.save(update_fields=["flow"])
    return services.publish_dialogue(dialogue_id=dialogue.pk, user=user)


def answer(acme_widget, conversation, value):
    response = acme_widget.answer(conversation, value)
    assert response.status_code == 200, response.content
    return {**conversation, **response.json()}


def test_it_finishes_a_conversation_on_the_version_it_started_on(acme_widget, acme_dialogue, maya):
    conversation = acme_widget.start_conversation(acme_dialogue)
    conversation = answer(acme_widget, conversation, "yes")

    publish(acme_dialogue, SECOND_FLOW, user=maya)
    conversation = answer(acme_widget, conversation, "Ann")
    conversation = answer(acme_widget, conversation, "ann@bigco.com")
    conversation = answer(acme_widget, conversation, "+1 415 555 2671")

    assert conversation["messages"] == [{"card_id": "book", "text": "Pick a time with our team."}]
    conversation = answer(acme_widget, conversation, "skip")
    assert conversation["done"] is True
    shown = acme_widget.get(
        f"/conversations/{conversation['conversation_id']}", token=conversation["token"]
    ).json()
    assert shown["version"] == 1


def test_it_starts_new_conversations_on_the_latest_version(acme_widget, acme_dialogue, maya):
    publish(acme_dialogue, SECOND_FLOW, user=maya)

    session = acme_widget.start_session()
    conversation = acme_widget.start_conversation(acme_dialogue, session["visitor_id"])

    assert session["dialogue"]["version"] == 2
    assert [m["text"] for m in conversation["messages"]] == [
        "Welcome to Acme v2.",
        "Shall we talk?",
    ]
    assert answer(acme_widget, conversation, "sure")["messages"] == [
        {"card_id": "done", "text": "Talk soon (v2)."}
    ]


def test_it_lets_a_conversation_under_way_finish_after_the_dialogue_is_unpublished(
    acme_widget, acme_dialogue
):
    conversation = acme_widget.start_conversation(acme_dialogue)

    services.unpublish_dialogue(dialogue_id=acme_dialogue.pk)
    finished = answer(acme_widget, conversation, "no")

    assert finished["messages"] == [{"card_id": "bye", "text": "Thanks, talk soon."}]
    assert finished["done"] is True


def test_it_offers_and_starts_nothing_new_once_unpublished(acme_widget, acme_dialogue):
    visitor_id = acme_widget.start_session()["visitor_id"]

    services.unpublish_dialogue(dialogue_id=acme_dialogue.pk)
    session = acme_widget.start_session(visitor_id=visitor_id)
    refused = acme_widget.post(
        "/conversations",
        {
            "visitor_id": visitor_id,
            "dialogue_id": acme_dialogue.pk,
            "page_url": "https://www.acme.test/",
        },
    )

    assert session["dialogue"] is None
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "dialogue_not_available"
    acme_dialogue.refresh_from_db()
    assert acme_dialogue.status == Dialogue.Status.UNPUBLISHED
    assert acme_dialogue.current_version.number == 1


def test_it_goes_live_again_with_a_new_version_when_republished(acme_widget, acme_dialogue):
    services.unpublish_dialogue(dialogue_id=acme_dialogue.pk)

    version = services.publish_dialogue(dialogue_id=acme_dialogue.pk)

    acme_dialogue.refresh_from_db()
    assert acme_dialogue.status == Dialogue.Status.PUBLISHED
    assert version.number == 2
    assert acme_widget.start_session()["dialogue"]["version"] == 2


def test_it_numbers_versions_one_two_three_and_records_who_published(acme, maya):
    dialogue = Dialogue.objects.create(site=acme, name="Demo", flow=EVERY_CARD_FLOW)

    numbers = [services.publish_dialogue(dialogue_id=dialogue.pk, user=maya).number]
    numbers.append(publish(dialogue, SECOND_FLOW).number)
    numbers.append(publish(dialogue, EVERY_CARD_FLOW, user=maya).number)

    assert numbers == [1, 2, 3]
    dialogue.refresh_from_db()
    assert dialogue.current_version.number == 3
    assert [(v.number, v.published_by) for v in dialogue.versions.order_by("number")] == [
        (1, maya),
        (2, None),
        (3, maya),
    ]
    assert all(v.published_at.tzinfo is not None for v in dialogue.versions.all())


def test_it_keeps_a_separate_numbering_for_each_dialogue(acme):
    first = make_published_dialogue(acme, name="First")
    second = make_published_dialogue(acme, name="Second")

    assert (first.current_version.number, second.current_version.number) == (1, 1)


@pytest.mark.parametrize("status", ["draft", "published"])
def test_it_refuses_to_publish_an_invalid_draft_and_changes_nothing(acme, status):
    dialogue = Dialogue.objects.create(site=acme, name="Demo", flow=EVERY_CARD_FLOW)
    if status == "published":
        services.publish_dialogue(dialogue_id=dialogue.pk)
    broken = copy.deepcopy(EVERY_CARD_FLOW)
    broken["cards"][1]["choices"][0]["label"] = ""
    dialogue.refresh_from_db()
    dialogue.flow = broken
    dialogue.save(update_fields=["flow"])
    before = (dialogue.status, dialogue.current_version_id, DialogueVersion.objects.count())

    with pytest.raises(FlowInvalid) as caught:
        services.publish_dialogue(dialogue_id=dialogue.pk)

    assert [(p.card_id, p.location) for p in caught.value.problems] == [
        ("want", "cards.1.choices.0.label")
    ]
    dialogue.refresh_from_db()
    assert (dialogue.status, dialogue.current_version_id, DialogueVersion.objects.count()) == before


def test_it_stores_the_published_flow_normalised(acme):
    draft = {
        "start": "ask",
        "cards": [
            {
                "id": "ask",
                "type": "capture",
                "text": "  Your name?  ",
                "input_type": "text",
                "attribute": "firstName",
                "next": "route",
            },
            {
                "id": "route",
                "type": "branch",
                "rules": [
                    {
                        "conditions": [{"subject": "lead.firstName", "operator": "is_empty"}],
                        "next": "ask",
                    }
                ],
                "default_next": "bye",
            },
            {"id": "bye", "type": "end"},
        ],
    }
    dialogue = Dialogue.objects.create(site=acme, name="Demo", flow=draft)

    version = services.publish_dialogue(dialogue_id=dialogue.pk)

    assert version.flow == parse_flow(draft).model_dump(mode="json")
    assert version.flow["cards"][0] == {
        "id": "ask",
        "type": "capture",
        "text": "Your name?",
        "input_type": "text",
        "attribute": "firstName",
        "placeholder": "",
        "skip_if_known": False,
        "next": "route",
    }
    assert version.flow["cards"][1]["rules"][0]["match"] == "all"
    assert version.flow["cards"][1]["rules"][0]["conditions"][0]["value"] == ""
    # What was stored reads back as the same flow.
    assert parse_flow(version.flow) == parse_flow(draft)


def test_it_keeps_a_published_version_unchanged_when_the_draft_is_edited(
    acme_widget, acme_dialogue
):
    version = acme_dialogue.current_version
    frozen = copy.deepcopy(version.flow)

    acme_dialogue.flow["cards"][0]["text"] = "Edited greeting"
    acme_dialogue.save(update_fields=["flow"])
    conversation = acme_widget.start_conversation(acme_dialogue)

    version.refresh_from_db()
    assert version.flow == frozen
    assert conversation["messages"][0]["text"] == "Hi there!"
    assert Dialogue.objects.get(pk=acme_dialogue.pk).flow["cards"][0]["text"] == "Edited greeting"
