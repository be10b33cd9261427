"""Maya sets who sees a dialogue, where and when, on its targeting page, and orders her
dialogues' priorities; nobody outside Acme's marketing team can do either."""

import json

import pytest
from django.contrib.auth import get_user_model

from dialogues import services
from dialogues.models import Dialogue, Membership
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def draft(acme):
    return services.create_dialogue(site=acme, name="Pricing help", starter="book_a_demo")


def url(dialogue):
    return f"/sites/{dialogue.site_id}/dialogues/{dialogue.pk}/targeting/"


def form(**overrides):
    data = {
        "include_urls": "",
        "exclude_urls": "",
        "trigger_type": "time_on_page",
        "trigger_seconds": "0",
        "trigger_percent": "",
        "starts_at": "",
        "ends_at": "",
        "audience_match": "all",
        "save": "1",
    }
    data.update(overrides)
    return data


def condition(g, c, source, field, operator, value=""):
    prefix = f"g{g}-c{c}-"
    return {
        prefix + "source": source,
        prefix + "field": field,
        prefix + "operator": operator,
        prefix + "value": value,
    }


def test_maya_saves_pages_a_trigger_a_schedule_and_an_audience(client, maya, draft):
    client.force_login(maya)
    data = form(
        include_urls="https://*.acme.test/pricing/*\n\n  https://www.acme.test/demo  ",
        exclude_urls="https://www.acme.test/pricing/old",
        trigger_type="scroll_depth",
        trigger_percent="60",
        starts_at="2026-12-01T09:00",
        ends_at="2026-12-31T18:00",
        audience_match="any",
        **{"g0-match": "all"},
        **condition(0, 0, "lead", "country", "in_list", "France, Belgium"),
        **condition(0, 1, "company", "numberOfEmployees", "greater_than", "50"),
        **{"g1-match": "any"},
        **condition(1, 0, "lead", "email", "is_empty"),
    )
    response = client.post(url(draft), data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.trigger == {"type": "scroll_depth", "seconds": 0, "percent": 60}
    assert draft.targeting == {
        "include_urls": ["https://*.acme.test/pricing/*", "https://www.acme.test/demo"],
        "exclude_urls": ["https://www.acme.test/pricing/old"],
        "audience_match": "any",
        "audience": [
            {
                "conditions": [
                    {
                        "subject": "lead.country",
                        "operator": "in_list",
                        "value": ["France", "Belgium"],
                    },
                    {
                        "subject": "company.numberOfEmployees",
                        "operator": "greater_than",
                        "value": "50",
                    },
                ]
            },
            {"match": "any", "conditions": [{"subject": "lead.email", "operator": "is_empty"}]},
        ],
        "starts_at": "2026-12-01T09:00:00Z",
        "ends_at": "2026-12-31T18:00:00Z",
    }
    page = client.get(url(draft)).content.decode()
    assert "https://*.acme.test/pricing/*" in page
    assert 'value="numberOfEmployees"' in page
    assert 'value="2026-12-01T09:00"' in page


def test_the_page_shows_what_is_stored(client, maya, draft):
    client.force_login(maya)
    client.post(
        url(draft), form(**{"g0-match": "all"}, **condition(0, 0, "chat", "phone", "is_not_empty"))
    )
    page = client.get(url(draft)).content.decode()
    assert '<option value="chat" selected>' in page
    assert '<option value="is_not_empty" selected>' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            form(include_urls="https://www.acme.test/?utm=x"),
            "Line 1: https://www.acme.test/?utm=x cannot use URL parameters",
        ),
        (
            form(exclude_urls="https://ok.test\nftp://files.acme.test"),
            "Line 2: ftp://files.acme.test must start with http",
        ),
        (form(trigger_type="scroll_depth"), "Say how far down the page, in percent."),
        (form(trigger_seconds="-1"), "greater than or equal to 0"),
        (form(trigger_type="exit_intent"), "Select a valid choice"),
        (
            form(starts_at="2026-12-02T00:00", ends_at="2026-12-01T00:00"),
            "The end must come after the start.",
        ),
        (form(starts_at="tomorrow"), "Enter a valid date/time."),
        (
            form(**{"g0-match": "all"}, **condition(0, 0, "lead", "country", "equals", "")),
            "This operator needs a value to compare with.",
        ),
        (
            form(**{"g0-match": "all"}, **condition(0, 0, "lead", "first name", "equals", "x")),
            "Name a field",
        ),
        (
            form(**{"g0-match": "all"}, **condition(0, 0, "visitor", "country", "equals", "x")),
            "Choose person, company or chat.",
        ),
        (
            form(**{"g0-match": "all"}, **condition(0, 0, "lead", "country", "resembles", "x")),
            "Choose an operator.",
        ),
    ],
)
def test_bad_input_says_why_and_saves_nothing(client, maya, draft, data, message):
    client.force_login(maya)
    before = (draft.targeting, draft.trigger)
    response = client.post(url(draft), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved" in page
    assert message in page.replace("&#x27;", "'")
    draft.refresh_from_db()
    assert (draft.targeting, draft.trigger) == before


def test_add_and_remove_buttons_change_the_rows_without_saving(client, maya, draft):
    client.force_login(maya)
    response = client.post(url(draft), {**form(), "add_group": "1"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.startswith('<form method="post" id="targeting-form"')
    assert 'name="g0-c0-field"' in page
    data = {**form(**{"g0-match": "all"}, **condition(0, 0, "lead", "country", "equals", "FR"))}
    page = client.post(url(draft), {**data, "add_condition": "0"}).content.decode()
    assert 'name="g0-c1-field"' in page
    assert 'value="FR"' in page
    page = client.post(url(draft), {**data, "remove": "0-0"}).content.decode()
    assert 'name="g0-c0-field"' not in page
    draft.refresh_from_db()
    assert draft.targeting == {}


def test_a_blank_condition_row_is_ignored(client, maya, draft):
    client.force_login(maya)
    data = form(**{"g0-match": "all"}, **condition(0, 0, "lead", "", "equals", ""))
    assert client.post(url(draft), data).status_code == 302
    draft.refresh_from_db()
    assert draft.targeting == {}


@pytest.fixture
def people(acme, globex):
    User = get_user_model()
    agent = User.objects.create_user("sam", password=PASSWORD)
    services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    marketer = User.objects.create_user("mia", password=PASSWORD)
    services.add_member(site=acme, user=marketer, role=Membership.Role.MARKETER)
    return {"agent": agent, "marketer": marketer}


def test_a_marketing_user_may_target_too(client, people, draft):
    client.force_login(people["marketer"])
    assert client.get(url(draft)).status_code == 200
    assert client.post(url(draft), form(include_urls="https://www.acme.test/*")).status_code == 302


@pytest.mark.parametrize("who", ["agent", "omar", "outsider"])
def test_nobody_else_sees_or_changes_targeting(client, people, omar, outsider, draft, who):
    user = {"agent": people["agent"], "omar": omar, "outsider": outsider}[who]
    client.force_login(user)
    assert client.get(url(draft)).status_code == 404
    response = client.post(url(draft), form(include_urls="https://evil.test/*"))
    assert response.status_code == 404
    assert b"Pricing help" not in response.content
    draft.refresh_from_db()
    assert draft.targeting == {}


def test_anonymous_users_are_sent_to_sign_in(client, draft):
    response = client.get(url(draft))
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_another_sites_dialogue_under_acmes_url_is_not_found(client, maya, acme, globex):
    theirs = services.create_dialogue(site=globex, name="Globex secret", starter="blank")
    client.force_login(maya)
    response = client.get(f"/sites/{acme.pk}/dialogues/{theirs.pk}/targeting/")
    assert response.status_code == 404


# --- Priority ----------------------------------------------------------------------------------


@pytest.fixture
def three(acme):
    return [
        services.create_dialogue(site=acme, name=name, starter="blank") for name in ("A", "B", "C")
    ]


def order_url(site):
    return f"/sites/{site.pk}/dialogues/order/"


def priorities(site):
    return list(
        Dialogue.objects.filter(site=site).order_by("-priority").values_list("name", flat=True)
    )


def test_dragging_sets_priorities_in_the_order_shown(client, maya, acme, three):
    a, b, c = three
    client.force_login(maya)
    response = client.post(
        order_url(acme), json.dumps({"order": [c.pk, a.pk, b.pk]}), content_type="application/json"
    )
    assert response.status_code == 200
    assert priorities(acme) == ["C", "A", "B"]


def test_the_move_buttons_post_the_order_as_a_form(client, maya, acme, three):
    a, b, c = three
    client.force_login(maya)
    response = client.post(order_url(acme), {"order": [b.pk, c.pk, a.pk]})
    assert response.status_code == 302
    assert priorities(acme) == ["B", "C", "A"]


def test_a_stale_order_changes_nothing(client, maya, acme, three):
    a, b, c = three
    client.force_login(maya)
    client.post(order_url(acme), {"order": [a.pk, b.pk, c.pk]})
    for order in ([a.pk, b.pk], [a.pk, b.pk, c.pk, c.pk], [a.pk, b.pk, "x"]):
        response = client.post(
            order_url(acme), json.dumps({"order": order}), content_type="application/json"
        )
        assert response.status_code == 409
        assert "reload the page" in response.json()["error"]["message"]
    assert priorities(acme) == ["A", "B", "C"]


def test_nobody_reorders_another_sites_dialogues(client, omar, acme, globex, three):
    a, b, c = three
    before = priorities(acme)
    client.force_login(omar)
    response = client.post(order_url(acme), {"order": [c.pk, b.pk, a.pk]})
    assert response.status_code == 404
    theirs = services.create_dialogue(site=globex, name="G", starter="blank")
    response = client.post(order_url(globex), {"order": [c.pk, b.pk, a.pk, theirs.pk]})
    assert response.status_code == 302
    assert priorities(acme) == before


def test_the_list_offers_move_buttons_only_when_showing_every_dialogue(client, maya, acme, three):
    client.force_login(maya)
    page = client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    assert 'aria-label="Move A up"' not in page
    assert 'aria-label="Move A down"' in page
    assert 'aria-label="Move C up"' in page
    assert f'data-reorder-url="/sites/{acme.pk}/dialogues/order/"' in page
    filtered = client.get(f"/sites/{acme.pk}/dialogues/?q=A").content.decode()
    assert "Move A" not in filtered
    assert "data-reorder-url" not in filtered
