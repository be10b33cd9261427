"""The flow editor: a marketer adds, edits, deletes (with undo), reorders cards and picks the
start card; each card shows its problems; bad input is refused next to the field with nothing
saved; htmx gets fragments, a plain browser whole pages; nobody else gets anything."""

import copy
import re

import pytest
from conftest import EVERY_CARD_FLOW, PASSWORD, _user

from dialogues import services
from dialogues.flow import edits
from dialogues.models import Dialogue, DialogueVersion, Membership

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
HTMX = {"HTTP_HX_REQUEST": "true"}


def editor(dialogue) -> str:
    return f"/sites/{dialogue.site_id}/dialogues/{dialogue.pk}/edit/"


def card_url(dialogue, card_id) -> str:
    return f"{editor(dialogue)}cards/{card_id}/"


def flow_of(dialogue) -> dict:
    dialogue.refresh_from_db()
    return dialogue.flow


@pytest.fixture
def maya_client(client, maya):
    client.login(username="maya", password=PASSWORD)
    return client


@pytest.fixture
def draft(acme):
    return Dialogue.objects.create(
        site=acme, name="Book a demo", flow=copy.deepcopy(EVERY_CARD_FLOW)
    )


def open_form(client, dialogue, card_id) -> dict:
    """The edit form's fields as a browser would post them (the form opened in full page)."""
    html = client.get(card_url(dialogue, card_id)).content.decode()
    form = html[html.index(f'action="{card_url(dialogue, card_id)}"') :]
    form = form[: form.index("</form>")]
    data = {}
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name[1] in ("csrfmiddlewaretoken", "action"):
            continue
        if tag.startswith("<input"):
            if 'type="checkbox"' in tag:
                if " checked" in tag:
                    data[name[1]] = "on"
                continue
            value = re.search(r'value="([^"]*)"', tag)
            data[name[1]] = value[1] if value else ""
        elif tag.startswith("<select"):
            rest = form[form.index(tag) :]
            select = rest[: rest.index("</select>")]
            chosen = re.search(r'<option value="([^"]*)" selected>', select)
            data[name[1]] = chosen[1] if chosen else ""
        else:
            rest = form[form.index(tag) + len(tag) :]
            data[name[1]] = rest[: rest.index("</textarea>")].strip("\n")
    return data


# --- the page ----------------------------------------------------------------------------------


def test_the_editor_lists_the_cards_in_order_with_the_start_marked(maya_client, draft):
    html = maya_client.get(editor(draft)).content.decode()

    positions = [html.index(f'id="card-{card["id"]}"') for card in EVERY_CARD_FLOW["cards"]]
    assert positions == sorted(positions)
    assert "Ready to publish." in html
    start = html[html.index('id="card-hello"') :]
    assert '<span class="status">start</span>' in start[: start.index("</h3>")]


def test_each_problem_is_shown_next_to_its_card(maya_client, draft):
    draft.flow["cards"][0]["text"] = ""
    draft.flow["cards"][6].pop("default_next")
    draft.save()

    html = maya_client.get(editor(draft)).content.decode()

    assert "2 problems to fix before publishing." in html
    hello = html[html.index('id="card-hello"') : html.index('id="card-want"')]
    assert "The message has no text: write what it says" in hello
    route = html[html.index('id="card-route"') : html.index('id="card-book"')]
    assert "The branch has no default" in route


def test_the_dialogue_page_links_to_the_editor(maya_client, draft):
    html = maya_client.get(f"/sites/{draft.site_id}/dialogues/{draft.pk}/").content.decode()

    assert f'href="{editor(draft)}"' in html


# --- adding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card_type", ["message", "question", "capture", "branch", "goal", "booking", "end"]
)
def test_a_card_of_any_type_can_be_added_at_the_end(maya_client, draft, card_type):
    response = maya_client.post(f"{editor(draft)}cards/add/", {"type": card_type})

    assert response.status_code == 302
    assert response["Location"] == f"{editor(draft)}#card-{card_type}-1"
    assert flow_of(draft)["cards"][-1] == {
        "id": f"{card_type}-1",
        "type": card_type,
        **edits.NEW_CARDS[card_type],
    }


def test_a_card_added_after_another_goes_right_after_it(maya_client, draft):
    maya_client.post(f"{editor(draft)}cards/add/", {"type": "message", "after": "hello"})

    flow = flow_of(draft)
    assert [c["id"] for c in flow["cards"][:3]] == ["hello", "message-1", "want"]
    assert flow["cards"][0]["next"] == "message-1"
    assert flow["cards"][1]["next"] == "want"


def test_with_htmx_adding_returns_the_editor_alone_with_the_new_cards_problems(maya_client, draft):
    response = maya_client.post(f"{editor(draft)}cards/add/", {"type": "goal"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="flow-editor"')
    assert "<html" not in html
    goal = html[html.index('id="card-goal-1"') :]
    assert "Name the goal" not in goal  # not a form error: a problem of the draft
    assert "String should have at least 1 character" in goal
    assert "no visitor can reach this card" in goal.lower()


@pytest.mark.parametrize("data", [{"type": "video"}, {}])
def test_adding_an_unknown_type_is_refused_and_changes_nothing(maya_client, draft, data):
    response = maya_client.post(f"{editor(draft)}cards/add/", data)

    assert response.status_code == 400
    assert "Pick the type of card to add." in response.content.decode()
    assert flow_of(draft) == EVERY_CARD_FLOW


def test_adding_after_a_card_that_does_not_exist_is_a_404(maya_client, draft):
    response = maya_client.post(f"{editor(draft)}cards/add/", {"type": "end", "after": "nope"})

    assert response.status_code == 404
    assert flow_of(draft) == EVERY_CARD_FLOW


# --- editing -----------------------------------------------------------------------------------


def test_with_htmx_edit_swaps_the_card_for_its_form(maya_client, draft):
    response = maya_client.get(card_url(draft, "hello"), **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<li id="card-hello" class="flow-card editing"')
    assert 'name="text"' in html
    assert "<html" not in html


def test_without_htmx_edit_shows_the_whole_page_with_the_form_in_place(maya_client, draft):
    html = maya_client.get(card_url(draft, "hello")).content.decode()

    assert "<html" in html
    assert 'id="card-want"' in html
    assert '<li id="card-hello" class="flow-card editing"' in html


def test_saving_a_message_changes_its_text_and_next_card(maya_client, draft):
    data = open_form(maya_client, draft, "hello")
    data.update(text='Hello {{lead.firstName | "you"}}', next="bye", action="save")

    response = maya_client.post(card_url(draft, "hello"), data)

    assert response.status_code == 302
    assert response["Location"] == f"{editor(draft)}#card-hello"
    assert flow_of(draft)["cards"][0] == {
        "id": "hello",
        "type": "message",
        "text": 'Hello {{lead.firstName | "you"}}',
        "next": "bye",
    }


def test_with_htmx_a_save_returns_the_whole_editor_retargeted(maya_client, draft):
    data = open_form(maya_client, draft, "goal")
    data.update(name="Demo wanted", action="save")

    response = maya_client.post(card_url(draft, "goal"), data, **HTMX)

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#flow-editor"
    assert response.content.decode().lstrip().startswith('<div id="flow-editor"')
    assert flow_of(draft)["cards"][4]["name"] == "Demo wanted"


def test_a_question_gets_new_choices_each_with_its_next_card(maya_client, draft):
    data = open_form(maya_client, draft, "want")
    data.update({"choice-0-label": "Sure", "action": "add_choice"})
    response = maya_client.post(card_url(draft, "want"), data)
    # The form comes back with a third, empty choice and the typed label kept; nothing saved.
    assert response.status_code == 200
    assert flow_of(draft) == EVERY_CARD_FLOW
    data = open_form_from(response, draft, "want")
    assert data["choices"] == "3" and data["choice-0-label"] == "Sure"
    data.update(
        {
            "choice-2-label": "Later",
            "choice-2-value": "later",
            "choice-2-next": "bye",
            "action": "save",
        }
    )

    maya_client.post(card_url(draft, "want"), data)

    assert flow_of(draft)["cards"][1]["choices"] == [
        {"label": "Sure", "value": "yes", "next": "name"},
        {"label": "No thanks", "value": "no", "next": "bye"},
        {"label": "Later", "value": "later", "next": "bye"},
    ]


def test_a_choice_can_be_removed(maya_client, draft):
    data = open_form(maya_client, draft, "want")
    data["action"] = "remove_choice-1"
    data = open_form_from(maya_client.post(card_url(draft, "want"), data), draft, "want")
    data["action"] = "save"

    maya_client.post(card_url(draft, "want"), data)

    assert [c["value"] for c in flow_of(draft)["cards"][1]["choices"]] == ["yes"]


def test_a_capture_can_store_a_custom_field(maya_client, draft):
    data = open_form(maya_client, draft, "name")
    data.update(
        attribute="custom",
        custom_field="shoeSize",
        input_type="text",
        placeholder="42",
        action="save",
    )
    data.pop("skip_if_known", None)

    maya_client.post(card_url(draft, "name"), data)

    card = flow_of(draft)["cards"][2]
    assert (card["attribute"], card["placeholder"], card["skip_if_known"]) == (
        "custom:shoeSize",
        "42",
        False,
    )


def test_a_branch_gets_rules_with_conditions_and_a_default(maya_client, draft):
    data = open_form(maya_client, draft, "route")
    data["action"] = "add_rule"
    data = open_form_from(maya_client.post(card_url(draft, "route"), data), draft, "route")
    data["action"] = "add_condition-1"
    data = open_form_from(maya_client.post(card_url(draft, "route"), data), draft, "route")
    data.update(
        {
            "rule-1-match": "any",
            "rule-1-cond-0-subject": "answer.want",
            "rule-1-cond-0-operator": "in_list",
            "rule-1-cond-0-value": "yes, maybe\nlater",
            "rule-1-cond-1-subject": "lead.email",
            "rule-1-cond-1-operator": "is_not_empty",
            "rule-1-next": "book",
            "default_next": "goal",
            "action": "save",
        }
    )

    response = maya_client.post(card_url(draft, "route"), data)

    assert response.status_code == 302, response.content.decode()
    card = flow_of(draft)["cards"][6]
    assert card["rules"][1] == {
        "match": "any",
        "conditions": [
            {"subject": "answer.want", "operator": "in_list", "value": ["yes", "maybe", "later"]},
            {"subject": "lead.email", "operator": "is_not_empty", "value": ""},
        ],
        "next": "book",
    }
    assert card["default_next"] == "goal"


def test_an_in_list_condition_shows_its_values_again_for_editing(maya_client, draft):
    draft.flow["cards"][6]["rules"][0]["conditions"][0] = {
        "subject": "answer.want",
        "operator": "in_list",
        "value": ["yes", "no"],
    }
    draft.save()

    assert open_form(maya_client, draft, "route")["rule-0-cond-0-value"] == "yes, no"


@pytest.mark.parametrize(
    ("card_id", "index", "fields"),
    [
        ("book", 7, {"text": "Pick a slot, {{lead.firstName}}"}),
        ("bye", 9, {"text": ""}),
    ],
)
def test_booking_and_end_texts_can_be_edited(maya_client, draft, card_id, index, fields):
    data = {**open_form(maya_client, draft, card_id), **fields, "action": "save"}

    maya_client.post(card_url(draft, card_id), data)

    assert flow_of(draft)["cards"][index]["text"] == fields["text"]


def test_a_booking_cards_days_and_way_out_can_be_edited(maya_client, draft):
    fields = {"days": "3", "skip_label": "Email me instead", "skip_next": "bye", "next": ""}
    data = {**open_form(maya_client, draft, "book"), **fields, "action": "save"}

    maya_client.post(card_url(draft, "book"), data)

    card = flow_of(draft)["cards"][7]
    assert (card["days"], card["skip_label"], card["skip_next"], card["next"]) == (
        3,
        "Email me instead",
        "bye",
        None,
    )


@pytest.mark.parametrize("days", ["0", "31", "a week"])
def test_a_booking_card_shows_between_one_and_thirty_days(maya_client, draft, days):
    before = flow_of(draft)
    data = {**open_form(maya_client, draft, "book"), "days": days, "action": "save"}

    response = maya_client.post(card_url(draft, "book"), data)

    assert flow_of(draft) == before
    assert response.status_code == 400
    page = response.content.decode()
    assert "Ensure this value" in page or "Enter a whole number" in page


def open_form_from(response, dialogue, card_id) -> dict:
    """The fields of a form returned by a row action, by reading the page it rendered."""

    class Page:
        content = response.content

    class Client:
        def get(self, _url):
            return Page

    return open_form(Client(), dialogue, card_id)


# --- bad input in every form -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card_id", "changes", "error"),
    [
        ("hello", {"text": ""}, "Write what the bot says."),
        ("hello", {"text": "Hi {{visitor.name}}"}, "names unknown namespace"),
        ("hello", {"text": "x" * 2001}, "at most 2000 characters"),
        ("hello", {"next": "not-a-card"}, "Select a valid choice"),
        ("want", {"choice-0-label": ""}, "Give the button a label."),
        ("want", {"choice-1-value": "yes"}, "each choice needs its own stored value"),
        ("want", {"choices": "0"}, "Add at least one choice."),
        ("name", {"attribute": "custom", "custom_field": ""}, "Name the custom field"),
        ("name", {"attribute": "custom", "custom_field": "1abc"}, "starting with a letter"),
        ("email", {"input_type": "text"}, "A email is captured with the Email input."),
        ("name", {"input_type": "fax"}, "Select a valid choice"),
        ("goal", {"name": ""}, "Name the goal."),
        ("route", {"rule-0-cond-0-subject": "visitor.email"}, "Name a field as lead."),
        ("route", {"rule-0-cond-0-value": ""}, "Give a value to compare with."),
        (
            "route",
            {"rule-0-cond-0-operator": "in_list", "rule-0-cond-0-value": " , "},
            "List at least one value.",
        ),
        ("route", {"rule-0-cond-0-operator": "sounds_like"}, "Select a valid choice"),
        ("route", {"rules": "0"}, "Add at least one rule."),
        ("route", {"rule-0-conditions": "0"}, "Rule 1 needs at least one condition."),
        ("book", {"text": ""}, "Write what the bot says."),
        ("bye", {"text": "Bye {{lead}}"}, "is not of the form"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_saved(
    maya_client, draft, card_id, changes, error
):
    data = {**open_form(maya_client, draft, card_id), **changes, "action": "save"}

    response = maya_client.post(card_url(draft, card_id), data)
    htmx_response = maya_client.post(card_url(draft, card_id), data, **HTMX)

    assert response.status_code == 400
    html = response.content.decode()
    assert error in html.replace("&#x27;", "'")
    # Shown in the card's form, on the full page...
    assert html.index(f'<li id="card-{card_id}" class="flow-card editing"') < html.index(
        error.replace("'", "&#x27;")
    )
    # ...or as the card's form alone for htmx, swapped in although it is a 400.
    assert htmx_response.status_code == 400
    assert htmx_response.content.decode().lstrip().startswith(f'<li id="card-{card_id}"')
    assert flow_of(draft) == EVERY_CARD_FLOW


def test_a_save_over_someone_elses_change_is_refused(maya_client, draft, acme):
    data = open_form(maya_client, draft, "hello")
    # A colleague saves the same card in the meantime.
    services.update_draft_card(
        dialogue_id=draft.pk,
        card={**EVERY_CARD_FLOW["cards"][0], "text": "Their words"},
        revision=data["revision"],
    )
    data.update(text="My words", action="save")

    response = maya_client.post(card_url(draft, "hello"), data)

    assert response.status_code == 409
    assert "Someone else saved this card while you were editing it" in response.content.decode()
    assert flow_of(draft)["cards"][0]["text"] == "Their words"


def test_editing_a_card_that_does_not_exist_is_a_404(maya_client, draft):
    assert maya_client.get(card_url(draft, "nope")).status_code == 404
    assert maya_client.post(card_url(draft, "nope"), {"action": "save"}).status_code == 404


# --- deleting, undo ----------------------------------------------------------------------------


def test_a_deleted_card_can_be_brought_back_with_its_links(maya_client, draft):
    response = maya_client.post(f"{card_url(draft, 'bye')}delete/", follow=True)

    html = response.content.decode()
    assert "Card <code>bye</code> deleted." in html
    flow = flow_of(draft)
    assert "bye" not in [c["id"] for c in flow["cards"]]
    assert flow["cards"][1]["choices"][1]["next"] is None
    # The cards that led to it now say so.
    assert "Choice \u201cNo thanks\u201d leads nowhere" in html
    token = re.search(r'name="token" value="([^"]+)"', html)[1]

    maya_client.post(f"{editor(draft)}undo/", {"token": token})

    assert flow_of(draft) == EVERY_CARD_FLOW


def test_with_htmx_delete_returns_the_editor_with_the_undo(maya_client, draft):
    response = maya_client.post(f"{card_url(draft, 'goal')}delete/", **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="flow-editor"')
    assert "Card <code>goal</code> deleted." in html
    token = re.search(r'name="token" value="([^"]+)"', html)[1]
    maya_client.post(f"{editor(draft)}undo/", {"token": token}, **HTMX)
    assert flow_of(draft) == EVERY_CARD_FLOW


def test_the_undo_offer_is_shown_once(maya_client, draft):
    maya_client.post(f"{card_url(draft, 'goal')}delete/")

    assert "deleted." in maya_client.get(editor(draft)).content.decode()
    assert "deleted." not in maya_client.get(editor(draft)).content.decode()


@pytest.mark.parametrize("token", ["", "forged", "other-dialogue"])
def test_a_bad_undo_is_refused_and_changes_nothing(maya_client, draft, acme, token):
    if token == "other-dialogue":
        other = Dialogue.objects.create(
            site=acme, name="Other", flow=copy.deepcopy(EVERY_CARD_FLOW)
        )
        html = maya_client.post(f"{card_url(other, 'goal')}delete/", follow=True).content.decode()
        token = re.search(r'name="token" value="([^"]+)"', html)[1]
    before = flow_of(draft)

    response = maya_client.post(f"{editor(draft)}undo/", {"token": token})

    assert response.status_code == 400
    assert "This undo has expired; nothing changed." in response.content.decode()
    assert flow_of(draft) == before


def test_undo_is_refused_when_a_card_took_the_id(maya_client, draft):
    html = maya_client.post(f"{card_url(draft, 'goal')}delete/", follow=True).content.decode()
    token = re.search(r'name="token" value="([^"]+)"', html)[1]
    maya_client.post(f"{editor(draft)}cards/add/", {"type": "goal"})
    flow = flow_of(draft)
    flow["cards"][-1]["id"] = "goal"
    Dialogue.objects.filter(pk=draft.pk).update(flow=flow)

    response = maya_client.post(f"{editor(draft)}undo/", {"token": token})

    assert response.status_code == 409
    assert "exists again" in response.content.decode()


# --- order and start ---------------------------------------------------------------------------


def test_cards_move_up_and_down(maya_client, draft):
    maya_client.post(f"{card_url(draft, 'want')}move/", {"direction": "up"})
    assert [c["id"] for c in flow_of(draft)["cards"][:2]] == ["want", "hello"]

    response = maya_client.post(f"{card_url(draft, 'want')}move/", {"direction": "down"}, **HTMX)
    assert response.content.decode().lstrip().startswith('<div id="flow-editor"')
    assert flow_of(draft) == EVERY_CARD_FLOW


def test_a_move_without_a_direction_is_refused(maya_client, draft):
    response = maya_client.post(f"{card_url(draft, 'want')}move/", {"direction": "sideways"})

    assert response.status_code == 400
    assert flow_of(draft) == EVERY_CARD_FLOW


def test_any_card_can_become_the_start(maya_client, draft):
    maya_client.post(f"{card_url(draft, 'want')}start/")

    assert flow_of(draft)["start"] == "want"
    # hello is now unreachable: shown as a problem, not refused.
    assert "No visitor can reach this card" in maya_client.get(editor(draft)).content.decode()


# --- publishing from the editor ----------------------------------------------------------------


def test_publishing_an_unready_draft_shows_why_next_to_the_cards(maya_client, draft):
    draft.flow["cards"][7] = {"id": "book", "type": "booking", "text": ""}
    draft.save()

    response = maya_client.post(f"{editor(draft)}publish/")

    assert response.status_code == 400
    html = response.content.decode()
    assert "Not published: fix these first" in html
    book = html[html.index('id="card-book"') : html.index('id="card-bye"')]
    assert "The booking has no text" in book
    assert not DialogueVersion.objects.filter(dialogue=draft).exists()


def test_publishing_a_ready_draft_goes_to_the_dialogue_page(maya_client, draft):
    response = maya_client.post(f"{editor(draft)}publish/", follow=True)

    assert "Published version 1: visitors see it now." in response.content.decode()
    assert DialogueVersion.objects.get(dialogue=draft).flow["start"] == "hello"


# --- who may edit ------------------------------------------------------------------------------

ACTIONS = [
    ("get", "", {}),
    ("post", "cards/add/", {"type": "end"}),
    ("get", "cards/hello/", {}),
    ("post", "cards/hello/", {"action": "save", "text": "Hacked", "revision": "x"}),
    ("post", "cards/hello/delete/", {}),
    ("post", "cards/hello/move/", {"direction": "down"}),
    ("post", "cards/want/start/", {}),
    ("post", "undo/", {"token": "x"}),
    ("post", "publish/", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), ACTIONS)
@pytest.mark.parametrize("who", ["agent", "outsider", "omar", "anonymous"])
def test_nobody_else_can_open_or_change_the_editor(
    client, draft, acme, globex, who, method, path, data
):
    if who == "agent":
        services.add_member(site=acme, user=_user("sam"), role=Membership.Role.AGENT)
        client.login(username="sam", password=PASSWORD)
    elif who != "anonymous":
        if who == "outsider":
            _user("outsider")
        client.login(username=who, password=PASSWORD)

    response = getattr(client, method)(f"{editor(draft)}{path}", data)

    if who == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    else:
        assert response.status_code == 404
        assert b"Hello" not in response.content and b"hello" not in response.content
    assert flow_of(draft) == EVERY_CARD_FLOW
    assert not DialogueVersion.objects.filter(dialogue=draft).exists()


@pytest.mark.parametrize(("method", "path", "data"), ACTIONS)
def test_a_dialogue_is_not_found_under_another_sites_url(client, draft, globex, method, path, data):
    """Omar, admin of Globex, names Acme's dialogue under his own site's URL."""
    client.login(username="omar", password=PASSWORD)

    url = f"/sites/{globex.pk}/dialogues/{draft.pk}/edit/{path}"
    response = getattr(client, method)(url, data)

    assert response.status_code == 404
    assert flow_of(draft) == EVERY_CARD_FLOW


@pytest.mark.parametrize("role", [Membership.Role.ADMIN, Membership.Role.MARKETER])
def test_marketing_admins_and_users_can_edit(client, draft, acme, role):
    services.add_member(site=acme, user=_user("rita"), role=role)
    client.login(username="rita", password=PASSWORD)

    assert client.get(editor(draft)).status_code == 200
    client.post(f"{editor(draft)}cards/add/", {"type": "end"})
    assert flow_of(draft)["cards"][-1]["id"] == "end-1"
