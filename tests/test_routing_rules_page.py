"""Maya writes Acme's custom routing rules: "visitors from Germany, France or Austria go to Alex
and Blair, in turns". Rules are checked by priority; she reorders them, switches them off and
on, edits and deletes them. A rule that cannot be right is refused with the reason next to the
field, and nothing is saved."""

import html
import re

import pytest
from django.contrib.auth import get_user_model

from routing import services
from routing.models import RoutingRule
from tests.conftest import PASSWORD, make_agent

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def blair(acme, alex):
    return make_agent(acme, "blair")


@pytest.fixture
def admin(client, maya):
    client.force_login(maya)
    return client


def rules_url(site, path=""):
    return f"/sites/{site.pk}/routing/rules/{path}"


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def rule_rows(response) -> list[str]:
    page = response.content.decode()
    body = re.search(r'<table id="rule-table".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = re.findall(r"<tr\b.*?</tr>", body, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def dach(agents, /, **overrides):
    """The form as Maya fills it in for the DACH rule."""
    return {
        "name": "DACH",
        "description": "German-speaking visitors",
        "match": "all",
        "c0-source": "lead",
        "c0-field": "country",
        "c0-operator": "in_list",
        "c0-value": "DE, FR,\nAT",
        "agents": [agent.pk for agent in agents],
        "save": "1",
        **overrides,
    }


def stored():
    return [
        (
            rule.name,
            rule.priority,
            rule.active,
            rule.match,
            rule.conditions,
            rule.description,
            sorted(rule.agents.values_list("username", flat=True)),
        )
        for rule in RoutingRule.objects.order_by("priority")
    ]


def make_rule(site, name, agents, **kwargs):
    return services.save_rule(
        site=site,
        name=name,
        description=kwargs.get("description", ""),
        match=kwargs.get("match", "all"),
        conditions=kwargs.get(
            "conditions", [{"subject": "company.industry", "operator": "equals", "value": name}]
        ),
        agent_ids=[agent.pk for agent in agents],
    )


def test_maya_creates_a_rule_and_sees_it_in_the_list(admin, acme, alex, blair):
    form = admin.get(rules_url(acme, "new/"))
    assert form.status_code == 200
    assert "Alex Agent (alex@example.com)" in text(form)

    response = admin.post(rules_url(acme, "new/"), dach([alex, blair]), follow=True)
    assert "Rule “DACH” saved." in text(response)
    assert stored() == [
        (
            "DACH",
            1,
            True,
            "all",
            [{"subject": "lead.country", "operator": "in_list", "value": ["DE", "FR", "AT"]}],
            "German-speaking visitors",
            ["alex", "blair"],
        )
    ]
    assert rule_rows(response) == [
        "1 DACH German-speaking visitors Person country in list DE, FR, AT "
        "Alex Agent (alex@example.com), Blair Agent (blair@example.com) On — switch off Edit Delete"
    ]


def test_a_rule_with_several_conditions_says_how_they_combine(admin, acme, alex):
    data = dach(
        [alex],
        match="any",
        **{
            "c1-source": "company",
            "c1-field": "numberOfEmployees",
            "c1-operator": "greater_than",
            "c1-value": "500",
            "c2-source": "lead",
            "c2-field": "email",
            "c2-operator": "is_not_empty",
            "c2-value": "ignored",
        },
    )
    admin.post(rules_url(acme, "new/"), data)
    assert RoutingRule.objects.get().conditions == [
        {"subject": "lead.country", "operator": "in_list", "value": ["DE", "FR", "AT"]},
        {"subject": "company.numberOfEmployees", "operator": "greater_than", "value": "500"},
        {"subject": "lead.email", "operator": "is_not_empty", "value": ""},
    ]
    row = rule_rows(admin.get(rules_url(acme)))[0]
    assert (
        "any of: Person country in list DE, FR, AT Company numberOfEmployees greater than 500 "
        "Person email is not empty"
    ) in row


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "x" * 101}, "Ensure this value has at most 100 characters (it has 101)."),
        ({"name": "dach"}, "Another rule is called “dach”."),
        ({"description": "x" * 501}, "Ensure this value has at most 500 characters (it has 501)."),
        ({"match": "most"}, "Select a valid choice. most is not one of the available choices."),
        ({"agents": []}, "Choose at least one agent."),
        ({"c0-source": "chat"}, "Choose person or company."),
        ({"c0-source": "visitor"}, "Choose person or company."),
        (
            {"c0-field": "country code"},
            "Name a field: letters, digits and _, starting with a letter (e.g. country).",
        ),
        ({"c0-operator": "like"}, "Choose an operator."),
        ({"c0-value": " , "}, "'in list' needs at least one value."),
        (
            {"c0-field": "", "c0-value": ""},
            "Add at least one condition: a rule without conditions would take every visitor.",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_the_reason_and_nothing_is_saved(
    admin, acme, alex, change, error
):
    make_rule(acme, "Dach", [alex])
    before = stored()
    response = admin.post(rules_url(acme, "new/"), dach([alex], **change))
    assert response.status_code == 400
    assert "Nothing was saved: please fix the fields marked below." in text(response)
    assert error in text(response)
    assert stored() == before


def test_an_empty_value_for_a_comparison_is_refused(admin, acme, alex):
    response = admin.post(
        rules_url(acme, "new/"), dach([alex], **{"c0-operator": "equals", "c0-value": " "})
    )
    # A blank field and value make the row blank (skipped); a field with no value is an error.
    assert response.status_code == 400
    assert "This operator needs a value to compare with." in text(response)
    assert not RoutingRule.objects.exists()


def test_only_the_sites_agents_can_take_a_rules_visitors(admin, acme, globex, maya, alex):
    gia = make_agent(globex, "gia")
    for someone in (maya, gia):
        response = admin.post(rules_url(acme, "new/"), dach([alex, someone]))
        assert response.status_code == 400
        assert f"Select a valid choice. {someone.pk} is not one of the available choices." in text(
            response
        )
    assert not RoutingRule.objects.exists()


def test_a_site_without_agents_is_told_to_add_some(admin, acme):
    assert "The site has no sales agents yet: add some on the Team page first." in text(
        admin.get(rules_url(acme, "new/"))
    )
    response = admin.post(rules_url(acme, "new/"), dach([]))
    assert response.status_code == 400
    assert "Choose at least one agent." in text(response)


def test_add_and_remove_change_the_rows_without_saving(admin, acme, alex, blair):
    data = dach([blair], name="Typed so far")
    data.pop("save")
    response = admin.post(rules_url(acme, "new/"), {**data, "add_condition": "1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="c1-field"' in page and 'name="c2-field"' not in page
    assert "Nothing was saved" not in text(response)
    assert 'value="Typed so far"' in page
    assert re.search(rf'value="{blair.pk}"[^>]*checked', page)
    assert not re.search(rf'value="{alex.pk}"[^>]*checked', page)

    response = admin.post(rules_url(acme, "new/"), {**data, "remove": "0"})
    assert 'name="c0-field"' not in response.content.decode()
    assert not RoutingRule.objects.exists()


def test_maya_edits_a_rule_and_its_name_stays_unique(admin, acme, alex, blair):
    rule = make_rule(acme, "DACH", [alex])
    make_rule(acme, "Banks", [alex])
    form = admin.get(rules_url(acme, f"{rule.pk}/"))
    page = form.content.decode()
    assert 'value="DACH"' in page and 'value="industry"' in page
    assert re.search(rf'value="{alex.pk}"[^>]*checked', page)

    response = admin.post(rules_url(acme, f"{rule.pk}/"), dach([blair], description="Changed"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.description, rule.priority) == ("DACH", "Changed", 1)
    assert list(rule.agents.values_list("username", flat=True)) == ["blair"]

    before = stored()
    response = admin.post(rules_url(acme, f"{rule.pk}/"), dach([blair], name="BANKS"))
    assert response.status_code == 400
    assert "Another rule is called “BANKS”." in text(response)
    assert stored() == before


def test_rules_are_reordered_by_their_arrows_and_numbered_one_to_n(admin, acme, alex):
    first, second, third = (make_rule(acme, name, [alex]) for name in ("One", "Two", "Three"))
    assert [r.priority for r in (first, second, third)] == [1, 2, 3]
    admin.post(rules_url(acme, f"{third.pk}/move/"), {"direction": "up"})
    assert [(r.name, r.priority) for r in RoutingRule.objects.all()] == [
        ("One", 1),
        ("Three", 2),
        ("Two", 3),
    ]
    # At the top, "up" leaves it there.
    admin.post(rules_url(acme, f"{first.pk}/move/"), {"direction": "up"})
    admin.post(rules_url(acme, f"{first.pk}/move/"), {"direction": "down"})
    assert [r.name for r in RoutingRule.objects.all()] == ["Three", "One", "Two"]
    response = admin.post(
        rules_url(acme, f"{first.pk}/move/"), {"direction": "sideways"}, follow=True
    )
    assert "Say whether to move the rule up or down." in text(response)
    assert [r.name for r in RoutingRule.objects.all()] == ["Three", "One", "Two"]

    rows = rule_rows(admin.get(rules_url(acme)))
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert "Move Three up" not in admin.get(rules_url(acme)).content.decode()

    admin.post(rules_url(acme, f"{first.pk}/delete/"))
    assert [(r.name, r.priority) for r in RoutingRule.objects.all()] == [("Three", 1), ("Two", 2)]


def test_a_rule_is_switched_off_and_on(admin, acme, alex):
    rule = make_rule(acme, "DACH", [alex])
    response = admin.post(rules_url(acme, f"{rule.pk}/active/"), {"active": "0"}, follow=True)
    assert "“DACH” is off." in text(response)
    assert "Off — switch on" in rule_rows(response)[0]
    rule.refresh_from_db()
    assert not rule.active
    admin.post(rules_url(acme, f"{rule.pk}/active/"), {"active": "1"})
    rule.refresh_from_db()
    assert rule.active
    response = admin.post(rules_url(acme, f"{rule.pk}/active/"), {"active": "maybe"}, follow=True)
    assert "Say whether to switch the rule on or off." in text(response)
    rule.refresh_from_db()
    assert rule.active


def test_a_rule_left_without_agents_cannot_be_switched_on(admin, acme, alex):
    rule = make_rule(acme, "DACH", [alex])
    rule.agents.clear()
    services.set_rule_active(site=acme, rule_id=rule.pk, active=False)
    response = admin.post(rules_url(acme, f"{rule.pk}/active/"), {"active": "1"}, follow=True)
    assert "“DACH” has no agents: choose some before switching it on." in text(response)
    assert "No agents" in rule_rows(response)[0]
    rule.refresh_from_db()
    assert not rule.active


def test_another_sites_rules_are_not_found(client, acme, globex, omar, alex):
    rule = make_rule(acme, "DACH", [alex])
    before = stored()
    client.force_login(omar)
    assert client.get(rules_url(globex, f"{rule.pk}/")).status_code == 404
    assert client.post(rules_url(globex, f"{rule.pk}/"), dach([alex])).status_code == 404
    assert (
        client.post(rules_url(globex, f"{rule.pk}/move/"), {"direction": "up"}).status_code == 404
    )
    assert client.post(rules_url(globex, f"{rule.pk}/active/"), {"active": "0"}).status_code == 404
    assert client.post(rules_url(globex, f"{rule.pk}/delete/")).status_code == 404
    assert client.get(rules_url(acme)).status_code == 404
    assert stored() == before


def test_marketing_users_and_agents_do_not_see_the_rules(client, acme, alex):
    from dialogues import services as dialogue_services
    from dialogues.models import Membership

    mia = get_user_model().objects.create_user("mia", password=PASSWORD)
    dialogue_services.add_member(site=acme, user=mia, role=Membership.Role.MARKETER)
    for user in (mia, alex):
        client.force_login(user)
        assert client.get(rules_url(acme)).status_code == 404
        assert client.get(rules_url(acme, "new/")).status_code == 404
