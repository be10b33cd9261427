"""Maya, Acme's marketing admin, runs Acme's routing: she orders the queue of sales agents
(Alex, Blair, Casey), pauses, removes and adds them, sees who cannot be booked and why, writes
the fallback message, and keeps the account list (one by one, or by CSV upload and download).
When someone leaves the team or stops being an agent, they leave its routing too."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from calendars.models import Availability, CalendarConnection
from calendars.services import mark_needs_reconnect
from dialogues import services as dialogue_services
from dialogues.models import Membership
from routing import services
from routing.accounts_csv import MAX_BYTES
from routing.models import AccountOwner, QueueMember, RoutingRule, RoutingSettings
from tests.conftest import PASSWORD, make_agent

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role


@pytest.fixture
def blair(acme, alex):
    return make_agent(acme, "blair", provider="google")


@pytest.fixture
def casey(acme, blair):
    return make_agent(acme, "casey")


@pytest.fixture
def admin(client, maya):
    client.force_login(maya)
    return client


def url(site, path=""):
    return f"/sites/{site.pk}/routing/{path}"


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def table_rows(response, table_id) -> list[str]:
    """The text of each body row of the table `table_id`."""
    page = response.content.decode()
    table = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    assert table, f"no table {table_id}"
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(0), re.S).group(1)
    rows = re.findall(r"<tr\b.*?</tr>", body, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def queue_order(site) -> list[str]:
    return list(
        QueueMember.objects.filter(site=site)
        .order_by("position")
        .values_list("user__username", flat=True)
    )


def positions(site) -> list[int]:
    return list(
        QueueMember.objects.filter(site=site)
        .order_by("position")
        .values_list("position", flat=True)
    )


def member_of(site, user) -> QueueMember:
    return QueueMember.objects.get(site=site, user=user)


# --- The queue ----------------------------------------------------------------------------------


def test_connecting_a_calendar_queued_the_agents_in_the_order_they_connected(acme, casey):
    assert queue_order(acme) == ["alex", "blair", "casey"]
    assert positions(acme) == [0, 1, 2]


def test_the_queue_shows_each_agents_calendar_and_who_is_skipped(admin, acme, alex, casey):
    dana = make_agent(acme, "dana")
    eli = make_agent(acme, "eli")
    Availability.objects.filter(user=dana).delete()
    mark_needs_reconnect(CalendarConnection.objects.get(user=casey).pk, "invalid_grant")
    CalendarConnection.objects.filter(user=eli).delete()  # disconnected since joining
    services.set_paused(site=acme, member_id=member_of(acme, alex).pk, paused=True)

    rows = table_rows(admin.get(url(acme)), "queue-table")
    assert len(rows) == 5
    assert "1 Alex Agent alex@example.com DynChat calendar connected Paused Resume" in rows[0]
    assert "2 Blair Agent blair@example.com Google Calendar connected In turn Pause" in rows[1]
    assert (
        "3 Casey Agent casey@example.com DynChat calendar needs reconnecting "
        "skipped until they reconnect Skipped: their calendar needs reconnecting"
    ) in rows[2]
    assert (
        "4 Dana Agent dana@example.com DynChat calendar connected · No hours set "
        "skipped until they set them Skipped: no hours set"
    ) in rows[3]
    assert (
        "5 Eli Agent eli@example.com No calendar skipped until they connect one "
        "Skipped: no calendar connected"
    ) in rows[4]


def names_in(rows) -> list[str]:
    return [re.search(r"\d+ (\w+) Agent", row).group(1) for row in rows]


def test_dragging_saves_the_whole_new_order(admin, acme, alex, blair, casey):
    response = admin.post(
        url(acme, "order/"),
        {"order": [casey.pk, alex.pk, blair.pk], "expected": [alex.pk, blair.pk, casey.pk]},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json() == {"order": [casey.pk, alex.pk, blair.pk]}
    assert queue_order(acme) == ["casey", "alex", "blair"]
    assert positions(acme) == [0, 1, 2]
    # What the page shows afterwards is the stored order.
    rows = table_rows(admin.get(url(acme)), "queue-table")
    assert names_in(rows) == ["Casey", "Alex", "Blair"]


@pytest.mark.parametrize(
    "body",
    [
        # The page showed an order that is not the stored one (another admin moved someone).
        lambda a, b, c: {"order": [c, a, b], "expected": [b, a, c]},
        # An agent is missing, or twice, or someone not in the queue is in it.
        lambda a, b, c: {"order": [c, a], "expected": [a, b, c]},
        lambda a, b, c: {"order": [c, a, a], "expected": [a, b, c]},
        lambda a, b, c: {"order": [c, a, b, 999999], "expected": [a, b, c]},
        # Not an order at all.
        lambda a, b, c: {"order": ["x"], "expected": [a, b, c]},
        lambda a, b, c: {"order": [c, a, b]},
    ],
)
def test_a_stale_or_wrong_order_is_refused_with_409_and_changes_nothing(
    admin, acme, alex, blair, casey, body
):
    response = admin.post(
        url(acme, "order/"), body(alex.pk, blair.pk, casey.pk), content_type="application/json"
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "stale_order",
            "message": "The queue changed meanwhile; reload the page and try again.",
        }
    }
    assert queue_order(acme) == ["alex", "blair", "casey"]


def test_the_arrows_move_an_agent_without_javascript(admin, acme, casey):
    page = admin.get(url(acme)).content.decode()
    form = re.search(r'<form[^>]*>(?:(?!</form>).)*aria-label="Move Casey Agent up"', page, re.S)
    fields = re.findall(r'name="(order|expected)" value="(\d+)"', form.group(0))
    data = {"order": [v for k, v in fields if k == "order"], "expected": []}
    data["expected"] = [v for k, v in fields if k == "expected"]
    response = admin.post(url(acme, "order/"), data, follow=True)
    assert "Queue order saved." in text(response)
    assert queue_order(acme) == ["alex", "casey", "blair"]

    # The same arrow again, from the page as it was: stale, so nothing moves.
    response = admin.post(url(acme, "order/"), data, follow=True)
    assert "The queue changed meanwhile; reload the page and try again." in text(response)
    assert queue_order(acme) == ["alex", "casey", "blair"]


def test_pausing_keeps_the_place_and_resuming_brings_them_back_in_turn(admin, acme, casey):
    blair_place = member_of(acme, get_user_model().objects.get(username="blair"))
    response = admin.post(url(acme, f"queue/{blair_place.pk}/pause/"), {"paused": "1"}, follow=True)
    assert "Blair Agent (blair@example.com) is paused: they get no meetings until resumed." in text(
        response
    )
    blair_place.refresh_from_db()
    assert blair_place.paused and blair_place.position == 1
    assert "Resume Blair Agent" in response.content.decode()

    admin.post(url(acme, f"queue/{blair_place.pk}/pause/"), {"paused": "0"})
    blair_place.refresh_from_db()
    assert not blair_place.paused and blair_place.position == 1


def test_a_pause_without_a_clear_answer_changes_nothing(admin, acme, alex):
    place = member_of(acme, alex)
    response = admin.post(url(acme, f"queue/{place.pk}/pause/"), {"paused": "yes"}, follow=True)
    assert "Say whether to pause or resume." in text(response)
    place.refresh_from_db()
    assert not place.paused


def test_removing_an_agent_closes_the_gap_and_offers_to_add_them_back(admin, acme, alex, casey):
    response = admin.post(url(acme, f"queue/{member_of(acme, alex).pk}/remove/"), follow=True)
    assert "Alex Agent (alex@example.com) is out of the queue." in text(response)
    assert queue_order(acme) == ["blair", "casey"]
    assert positions(acme) == [0, 1]
    assert "Agents not in the queue Alex Agent Add to queue" in text(response)

    response = admin.post(url(acme, "queue/add/"), {"user": alex.pk}, follow=True)
    assert "Alex Agent (alex@example.com) joined the end of the queue." in text(response)
    assert queue_order(acme) == ["blair", "casey", "alex"]
    assert positions(acme) == [0, 1, 2]
    assert "Agents not in the queue" not in text(response)


def test_only_agents_with_a_connected_calendar_can_be_added(admin, acme, maya, alex, blair):
    sam = get_user_model().objects.create_user("sam", email="sam@example.com", password=PASSWORD)
    dialogue_services.add_member(site=acme, user=sam, role=Role.AGENT)  # no calendar
    services.remove_from_queue(site=acme, member_id=member_of(acme, blair).pk)
    mark_needs_reconnect(CalendarConnection.objects.get(user=blair).pk, "invalid_grant")

    page = text(admin.get(url(acme)))
    assert "sam@example.com — no calendar connected; they join when they connect one" in page
    assert (
        "Blair Agent — their Google Calendar needs reconnecting; they rejoin when they reconnect it"
        in page
    )
    assert "Add Blair Agent to the queue" not in admin.get(url(acme)).content.decode()

    for user_id, message in [
        (sam.pk, "Only an agent with a connected calendar can join the queue"),
        (blair.pk, "Only an agent with a connected calendar can join the queue"),
        (maya.pk, "Only the site's sales agents can be in its queue."),
        (alex.pk, "They are in the queue already."),
        ("nobody", "Choose an agent."),
    ]:
        response = admin.post(url(acme, "queue/add/"), {"user": user_id}, follow=True)
        assert message in text(response), user_id
    assert queue_order(acme) == ["alex"]


def test_another_sites_queue_places_are_not_found(client, acme, globex, omar, alex):
    place = member_of(acme, alex)
    client.force_login(omar)
    assert client.post(url(globex, f"queue/{place.pk}/pause/"), {"paused": "1"}).status_code == 404
    assert client.post(url(globex, f"queue/{place.pk}/remove/")).status_code == 404
    assert client.post(url(globex, "queue/add/"), {"user": alex.pk}).status_code == 302
    assert not QueueMember.objects.filter(site=globex).exists()
    place.refresh_from_db()
    assert not place.paused


def test_next_up_is_who_the_next_round_robin_meeting_goes_to(admin, acme, alex, blair):
    assert "Next up: Alex Agent (alex@example.com)" in text(admin.get(url(acme)))
    services.reorder_queue(site=acme, user_ids=[blair.pk, alex.pk], expected=[alex.pk, blair.pk])
    assert "Next up: Blair Agent (blair@example.com)" in text(admin.get(url(acme)))
    # Nobody can take a meeting: no "Next up" at all.
    for agent in (alex, blair):
        services.set_paused(site=acme, member_id=member_of(acme, agent).pk, paused=True)
    assert "Next up" not in text(admin.get(url(acme)))


def test_htmx_gets_the_queue_table_alone(admin, acme, alex):
    response = admin.get(url(acme), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="queue">')
    assert "Fallback message" not in page


# --- The fallback message ----------------------------------------------------------------------


def test_the_fallback_message_starts_as_the_default_and_is_saved(admin, acme):
    page = admin.get(url(acme)).content.decode()
    assert html.escape(RoutingSettings.DEFAULT_FALLBACK) in page
    assert "Shown at a booking card when nobody can take the visitor." in page
    response = admin.post(
        url(acme, "fallback/"),
        {"fallback_message": "  Everyone is busy: we'll write to you today.  "},
        follow=True,
    )
    assert "Fallback message saved." in text(response)
    assert RoutingSettings.objects.get(site=acme).fallback_message == (
        "Everyone is busy: we'll write to you today."
    )
    admin.post(url(acme, "fallback/"), {"fallback_message": "Second thoughts."})
    assert RoutingSettings.objects.get(site=acme).fallback_message == "Second thoughts."


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", "Write the message visitors see."),
        ("   ", "Write the message visitors see."),
        ("x" * 501, "Ensure this value has at most 500 characters (it has 501)."),
    ],
)
def test_a_bad_fallback_message_is_refused_and_nothing_is_stored(admin, acme, message, error):
    response = admin.post(url(acme, "fallback/"), {"fallback_message": message})
    assert response.status_code == 400
    assert "Nothing was saved: please fix the message." in text(response)
    assert error in text(response)
    assert not RoutingSettings.objects.filter(site=acme).exists()


# --- Site navigation ----------------------------------------------------------------------------


def test_admins_find_routing_in_the_site_menu_and_others_do_not(client, maya, acme):
    client.force_login(maya)
    nav = re.search(
        r'<nav class="site-nav".*?</nav>',
        client.get(f"/sites/{acme.pk}/dialogues/").content.decode(),
        re.S,
    ).group(0)
    assert f'href="/sites/{acme.pk}/routing/"' in nav
    page = client.get(url(acme, "rules/")).content.decode()
    assert re.search(r'href="/sites/\d+/routing/" aria-current="page">Routing', page)
    assert re.search(r'href="/sites/\d+/routing/rules/" aria-current="page">Custom rules', page)

    mia = get_user_model().objects.create_user("mia", password=PASSWORD)
    dialogue_services.add_member(site=acme, user=mia, role=Role.MARKETER)
    client.force_login(mia)
    assert "/routing/" not in client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    assert client.get(url(acme)).status_code == 404


# --- Team changes -------------------------------------------------------------------------------


def team_url(site, path=""):
    return f"/sites/{site.pk}/members/{path}"


@pytest.fixture
def alex_everywhere(acme, alex, blair, casey):
    """Alex is in the queue, in two rules (one of them his alone) and owns two accounts."""
    services.save_rule(
        site=acme,
        name="DACH",
        description="",
        match="all",
        conditions=[{"subject": "lead.country", "operator": "in_list", "value": ["DE", "AT"]}],
        agent_ids=[alex.pk, blair.pk],
    )
    services.save_rule(
        site=acme,
        name="Banks",
        description="",
        match="all",
        conditions=[{"subject": "company.industry", "operator": "equals", "value": "Banking"}],
        agent_ids=[alex.pk],
    )
    services.save_account_owner(site=acme, company_name="Initech", domain="", owner=alex)
    services.save_account_owner(site=acme, company_name="", domain="hooli.com", owner=alex)
    services.save_account_owner(site=acme, company_name="Globex", domain="", owner=blair)
    return alex


def test_removing_an_agent_from_the_team_takes_them_out_of_routing(admin, acme, alex_everywhere):
    alex = alex_everywhere
    membership = Membership.objects.get(site=acme, user=alex)
    response = admin.post(team_url(acme, f"{membership.pk}/remove/"), follow=True)
    page = text(response)
    assert "Removed from the site." in page
    assert (
        "They left the routing queue and the custom rules “DACH”, “Banks”. Their 2 accounts no "
        "longer have an owner and were removed from account routing: those visitors now go by "
        "the rules and the queue. The rule “Banks” had no other agent and was switched off."
    ) in page
    assert queue_order(acme) == ["blair", "casey"]
    assert positions(acme) == [0, 1]
    rules = {rule.name: rule for rule in RoutingRule.objects.filter(site=acme)}
    assert list(rules["DACH"].agents.values_list("username", flat=True)) == ["blair"]
    assert rules["DACH"].active
    assert not rules["Banks"].agents.exists() and not rules["Banks"].active
    assert list(AccountOwner.objects.filter(site=acme).values_list("company_name", flat=True)) == [
        "Globex"
    ]


def test_an_agent_who_becomes_a_marketer_leaves_routing_and_rejoins_as_an_agent(
    admin, acme, alex_everywhere
):
    alex = alex_everywhere
    membership = Membership.objects.get(site=acme, user=alex)
    response = admin.post(
        team_url(acme, f"{membership.pk}/role/"), {"role": Role.MARKETER}, follow=True
    )
    assert "They left the routing queue and the custom rules" in text(response)
    assert queue_order(acme) == ["blair", "casey"]
    assert not AccountOwner.objects.filter(owner=alex).exists()

    # Back to sales agent: his calendar is still connected, so he joins the end of the queue.
    response = admin.post(
        team_url(acme, f"{membership.pk}/role/"), {"role": Role.AGENT}, follow=True
    )
    assert "They left" not in text(response)
    assert queue_order(acme) == ["blair", "casey", "alex"]


def test_a_role_change_between_marketing_roles_says_nothing_of_routing(admin, acme, alex):
    mia = get_user_model().objects.create_user("mia", email="mia@acme.test", password=PASSWORD)
    membership = dialogue_services.add_member(site=acme, user=mia, role=Role.MARKETER)
    response = admin.post(
        team_url(acme, f"{membership.pk}/role/"), {"role": Role.ADMIN}, follow=True
    )
    assert "mia@acme.test is now marketing admin." in text(response)
    assert "They left" not in text(response)
    assert queue_order(acme) == ["alex"]


def test_an_agent_with_a_calendar_added_to_another_site_joins_only_that_sites_queue(
    admin, maya, acme, globex, alex
):
    # Alex works for Globex too; Omar took him out of Globex's queue.
    dialogue_services.add_member(site=globex, user=alex, role=Role.AGENT)
    assert queue_order(globex) == ["alex"]
    services.remove_from_queue(site=globex, member_id=member_of(globex, alex).pk)
    # Maya's new site: Alex is invited by email, with his calendar already connected.
    other = dialogue_services.create_site(name="Acme EU", allowed_origins=[], owner=maya)
    response = admin.post(team_url(other), {"email": "ALEX@example.com", "role": Role.AGENT})
    assert response.status_code == 302
    assert queue_order(other) == ["alex"]
    assert queue_order(globex) == []  # Omar's decision stands


def test_people_without_a_calendar_or_not_agents_join_no_queue(admin, acme, alex):
    admin.post(team_url(acme), {"email": "new@acme.test", "role": Role.AGENT})
    admin.post(team_url(acme), {"email": "mark@acme.test", "role": Role.MARKETER})
    assert queue_order(acme) == ["alex"]


# --- Account routing: the list and one-by-one entries ------------------------------------------


def test_an_account_is_added_with_its_domain_cut_down(admin, acme, alex):
    response = admin.post(
        url(acme, "accounts/"),
        {"company_name": " Initech ", "domain": "https://WWW.Initech.com/about", "owner": alex.pk},
        follow=True,
    )
    assert "Initech now goes to Alex Agent (alex@example.com)." in text(response)
    account = AccountOwner.objects.get(site=acme)
    assert (account.company_name, account.company_key, account.domain, account.owner) == (
        "Initech",
        "initech",
        "initech.com",
        alex,
    )
    assert table_rows(response, "account-table") == [
        "Initech initech.com Alex Agent alex@example.com Delete"
    ]


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"company_name": "", "domain": ""}, "Give a company name, a domain or both."),
        ({"domain": "initech"}, "“initech” is not a domain name (such as acme.com)."),
        ({"domain": "sam@hooli.com"}, "“sam@hooli.com” is not a domain name (such as acme.com)."),
        ({"domain": "http://www.HOOLI.com/"}, "hooli.com is listed already (owner: Alex Agent)."),
        (
            {"company_name": "  GLOBEX  corp "},
            "“Globex Corp” is listed already (owner: Alex Agent).",
        ),
        ({"company_name": "x" * 256}, "Ensure this value has at most 255 characters (it has 256)."),
        ({"company_name": "Nakatomi", "owner": ""}, "Choose the agent who owns this account."),
    ],
)
def test_a_bad_account_entry_is_refused_and_nothing_is_added(admin, acme, alex, data, field_error):
    services.save_account_owner(site=acme, company_name="", domain="hooli.com", owner=alex)
    services.save_account_owner(site=acme, company_name="Globex Corp", domain="", owner=alex)
    before = list(AccountOwner.objects.values_list("pk", "company_name", "domain", "owner"))
    response = admin.post(url(acme, "accounts/"), {"owner": alex.pk, **data})
    assert response.status_code == 400
    assert "Nothing was added: please fix the fields below." in text(response)
    assert field_error in text(response)
    assert list(AccountOwner.objects.values_list("pk", "company_name", "domain", "owner")) == before


def test_only_the_sites_agents_can_own_accounts(admin, acme, globex, maya, omar, alex):
    other_agent = make_agent(globex, "gia")
    for owner in (maya, omar, other_agent):
        response = admin.post(
            url(acme, "accounts/"), {"company_name": "Initech", "owner": owner.pk}
        )
        assert response.status_code == 400
        assert "Select a valid choice." in text(response)
    assert not AccountOwner.objects.exists()


def test_the_list_is_searched_and_paged(admin, acme, alex, blair):
    for i in range(55):
        services.save_account_owner(
            site=acme, company_name=f"Company {i:02}", domain=f"c{i:02}.com", owner=alex
        )
    services.save_account_owner(site=acme, company_name="Zeta", domain="zeta.io", owner=blair)

    first = admin.get(url(acme, "accounts/"))
    assert "56 accounts." in text(first)
    assert len(table_rows(first, "account-table")) == 50
    assert "Page 1 of 2" in text(first)
    second = admin.get(url(acme, "accounts/?page=2"))
    assert (
        table_rows(second, "account-table")[-1]
        == "Zeta zeta.io Blair Agent blair@example.com Delete"
    )
    assert len(table_rows(second, "account-table")) == 6

    assert table_rows(admin.get(url(acme, "accounts/?q=ZETA")), "account-table") == [
        "Zeta zeta.io Blair Agent blair@example.com Delete"
    ]
    assert len(table_rows(admin.get(url(acme, "accounts/?q=blair")), "account-table")) == 1
    assert len(table_rows(admin.get(url(acme, "accounts/?q=c1")), "account-table")) == 10
    assert "No account matches “nothing”." in text(admin.get(url(acme, "accounts/?q=nothing")))


def test_an_entry_is_deleted_and_the_admin_stays_on_her_search(admin, acme, globex, omar, alex):
    account = services.save_account_owner(site=acme, company_name="Initech", domain="", owner=alex)
    client_of_omar = admin.__class__()
    client_of_omar.force_login(omar)
    assert client_of_omar.post(url(globex, f"accounts/{account.pk}/delete/")).status_code == 404
    assert AccountOwner.objects.filter(pk=account.pk).exists()

    response = admin.post(url(acme, f"accounts/{account.pk}/delete/"), {"q": "init", "page": "1"})
    assert response["Location"] == url(acme, "accounts/?q=init&page=1")
    assert not AccountOwner.objects.exists()


# --- Account routing: CSV upload and download ---------------------------------------------------


def upload(client, site, content: str | bytes, name="accounts.csv"):
    data = content.encode("utf-8") if isinstance(content, str) else content
    return client.post(
        url(site, "accounts/upload/"), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def accounts(site) -> list[tuple[str, str, str]]:
    return list(
        AccountOwner.objects.filter(site=site)
        .order_by("company_key", "domain")
        .values_list("company_name", "domain", "owner__username")
    )


def test_an_upload_with_problems_lists_each_row_and_imports_nothing(admin, acme, maya, alex, blair):
    services.save_account_owner(site=acme, company_name="Existing", domain="", owner=alex)
    before = accounts(acme)
    response = upload(
        admin,
        acme,
        "company,domain,owner_email\n"
        "Initech,initech.com,alex@example.com\n"  # 2: fine
        ",,alex@example.com\n"  # 3: neither name nor domain
        "Hooli,hooli,blair@example.com\n"  # 4: bad domain
        "Nakatomi,nakatomi.jp,nobody@example.com\n"  # 5: unknown owner
        "Umbrella,umbrella.com,maya@example.com\n"  # 6: not an agent of Acme
        "INITECH,other.com,alex@example.com\n"  # 7: company again
        "Soylent,www.initech.com,blair@example.com\n",  # 8: domain again
    )
    assert response.status_code == 400
    assert "Nothing was imported: fix the rows below and upload the file again." in text(response)
    assert table_rows(response, "row-errors") == [
        "3 company Give a company name, a domain or both.",
        "4 domain “hooli” is not a domain name (such as acme.com).",
        "5 owner_email Nobody has the email nobody@example.com.",
        "6 owner_email maya@example.com is not a sales agent of Acme.",
        "7 company “INITECH” is also on row 2.",
        "8 domain initech.com is also on row 2.",
    ]
    assert accounts(acme) == before


def test_owners_problems_alone_also_import_nothing(admin, acme, omar, alex):
    response = upload(
        admin,
        acme,
        "company,domain,owner_email\nInitech,initech.com,alex@example.com\n"
        "Globex,globex.com,OMAR@example.com\n",
    )
    assert response.status_code == 400
    assert table_rows(response, "row-errors") == [
        "3 owner_email omar@example.com is not a sales agent of Acme."
    ]
    assert accounts(acme) == []


def test_a_good_upload_adds_and_updates_in_one_go(admin, acme, alex, blair):
    services.save_account_owner(site=acme, company_name="Hooli", domain="hooli.com", owner=alex)
    services.save_account_owner(site=acme, company_name="Initech", domain="", owner=alex)
    services.save_account_owner(site=acme, company_name="", domain="globex.com", owner=alex)
    services.save_account_owner(site=acme, company_name="Soylent", domain="", owner=blair)
    response = upload(
        admin,
        acme,
        "\ufeffcompany,domain,owner_email\r\n"
        "hooli,https://www.hooli.com,BLAIR@example.com\r\n"  # same domain: new owner, name as typed
        "Initech,initech.com,alex@example.com\r\n"  # same company: gets its domain
        "Globex,globex.com,alex@example.com\r\n"  # same domain: gets its name
        "Soylent,,blair@example.com\r\n"  # as listed already
        "Nakatomi,nakatomi.jp,blair@example.com\r\n"  # new
        ",umbrella.com,alex@example.com\r\n",  # new
    )
    assert response.status_code == 302
    page = text(admin.get(response["Location"]))
    assert "Account list imported: 2 added, 3 updated, 1 unchanged." in page
    assert accounts(acme) == [
        ("", "umbrella.com", "alex"),
        ("Globex", "globex.com", "alex"),
        ("hooli", "hooli.com", "blair"),
        ("Initech", "initech.com", "alex"),
        ("Nakatomi", "nakatomi.jp", "blair"),
        ("Soylent", "", "blair"),
    ]


def test_a_row_that_would_give_a_company_a_second_entry_is_refused(admin, acme, alex):
    services.save_account_owner(site=acme, company_name="Hooli", domain="hooli.com", owner=alex)
    services.save_account_owner(site=acme, company_name="Initech", domain="", owner=alex)
    services.save_account_owner(site=acme, company_name="", domain="initech.com", owner=alex)
    before = accounts(acme)
    response = upload(
        admin,
        acme,
        "company,domain,owner_email\n"
        "Hooli,hooli.de,alex@example.com\n"
        "Initech,initech.com,alex@example.com\n",
    )
    assert response.status_code == 400
    assert table_rows(response, "row-errors") == [
        "2 company “Hooli” is already listed with the domain hooli.com.",
        "3 company “Initech” is already listed apart from initech.com; delete one of the two "
        "entries first.",
    ]
    assert accounts(acme) == before


def test_renames_that_free_a_name_for_the_next_row_are_imported(admin, acme, alex, blair):
    services.save_account_owner(site=acme, company_name="Old name", domain="a.com", owner=alex)
    response = upload(
        admin,
        acme,
        "company,domain,owner_email\nNew name,a.com,alex@example.com\n"
        "Old name,b.com,blair@example.com\n",
    )
    assert response.status_code == 302
    assert accounts(acme) == [("New name", "a.com", "alex"), ("Old name", "b.com", "blair")]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "The file is empty."),
        (b"name,owner\nAcme,a@b.com\n", "missing: company, domain, owner_email."),
        (
            "company,domain,owner_email\nSoci\xe9t\xe9,a.fr,alex@example.com\n".encode("latin-1"),
            "The file is not UTF-8 text.",
        ),
        (b"company,domain,owner_email\n" + b"x" * MAX_BYTES, "The file is larger than 2 MB."),
    ],
)
def test_a_file_that_cannot_be_read_imports_nothing(admin, acme, alex, content, error):
    response = upload(admin, acme, content)
    assert response.status_code == 400
    assert "Nothing was imported: please fix the file." in text(response)
    assert error in text(response)
    assert accounts(acme) == []


def test_no_file_is_asked_for(admin, acme):
    response = admin.post(url(acme, "accounts/upload/"), {})
    assert response.status_code == 400
    assert "Choose a CSV file." in text(response)


def test_the_download_is_the_list_as_csv_and_uploads_back_unchanged(admin, acme, alex, blair):
    services.save_account_owner(site=acme, company_name="=cmd|' /C calc'!A0", domain="", owner=alex)
    services.save_account_owner(
        site=acme, company_name="Hooli, Inc.", domain="hooli.com", owner=blair
    )
    services.save_account_owner(site=acme, company_name="", domain="globex.com", owner=alex)

    response = admin.get(url(acme, "accounts/download/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="accounts-acme.csv"'
    assert response.content.decode("utf-8") == (
        "\ufeffcompany,domain,owner_email\r\n"
        ",globex.com,alex@example.com\r\n"
        "'=cmd|' /C calc'!A0,,alex@example.com\r\n"
        '"Hooli, Inc.",hooli.com,blair@example.com\r\n'
    )
    assert admin.post(url(acme, "accounts/download/")).status_code == 405

    before = accounts(acme)
    back = upload(admin, acme, response.content)
    assert back.status_code == 302
    assert "Account list imported: 0 added, 0 updated, 3 unchanged." in text(
        admin.get(back["Location"])
    )
    assert accounts(acme) == before
