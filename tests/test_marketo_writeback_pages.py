"""Acme's Marketo write-back pages.

Maya, Acme's marketing admin, decides which lead field each chat attribute updates, watches
how delivery to Marketo goes, and looks after the outbox: she retries records Marketo refused
(a lead's upsert takes along the records that waited for it) or discards them. Mia, Acme's
marketer, gives a dialogue its Marketo actions: on a goal, change the lead's status in a program
and request a campaign with tokens; she reads the programs and campaigns from Marketo again.
Sam (Acme's sales agent), Omar (Globex's admin), an outsider and anyone signed out can do none
of it, and learn nothing of Acme's records."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from dialogues import services as dialogue_services
from dialogues.models import Dialogue, Membership
from marketo_sync import writeback
from marketo_sync import writeback_services as services
from marketo_sync.models import (
    DEFAULT_FIELD_MAPPING,
    DeliveryState,
    LeadFieldMapping,
    MarketoAction,
    MarketoCampaign,
    MarketoProgram,
    OutboxRecord,
    SyncSettings,
)
from tests.conftest import EVERY_CARD_FLOW, _user, make_published_dialogue

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role
Kind = OutboxRecord.Kind
Status = OutboxRecord.Status


# --- people and things ---------------------------------------------------------------------


@pytest.fixture
def sam(acme):
    user = _user("sam")
    dialogue_services.add_member(site=acme, user=user, role=Role.AGENT)
    return user


@pytest.fixture
def personas(maya, mia, sam, omar, outsider, globex):
    return {"admin": maya, "marketer": mia, "agent": sam, "outsider": outsider, "omar": omar}


@pytest.fixture
def as_maya(client, maya):
    client.force_login(maya)
    return client


@pytest.fixture
def as_mia(client, mia):
    client.force_login(mia)
    return client


def record(site, *, kind=Kind.ACTIVITY, status=Status.PARKED, lead_key="ann@bigco.com", **fields):
    """An outbox record as delivery leaves it (parked ones with Marketo's reason)."""
    now = timezone.now()
    payloads = {
        Kind.LEAD: {"email": "Ann@BigCo.com", "attributes": {"firstName": "Ann"}},
        Kind.COOKIE: {"cookie": "id:123-ABC-456&token:_mch-acme.test-1-2"},
        Kind.ACTIVITY: {
            "type": "goal",
            "primary": "Book a demo",
            "attributes": {"goalName": "Email captured"},
        },
        Kind.PROGRAM_STATUS: {"program_id": 1001, "program_name": "Webinar", "status": "Attended"},
        Kind.CAMPAIGN: {"campaign_id": 3001, "campaign_name": "Send the deck", "tokens": []},
    }
    defaults = {
        "payload": payloads[kind],
        "next_attempt_at": now,
        "created_at": now,
        "attempts": 5 if status == Status.PARKED else 0,
        "error_code": "1003" if status == Status.PARKED else "",
        "error_message": "Invalid value for field" if status == Status.PARKED else "",
        "rank": 0 if kind == Kind.LEAD else 1,
    }
    defaults.update(fields)
    return OutboxRecord.objects.create(
        site=site, kind=kind, status=status, lead_key=lead_key, **defaults
    )


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def table_rows(response, table_id) -> list[str]:
    page = response.content.decode()
    table = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    assert table, f"no table {table_id}"
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(0), re.S).group(1)
    rows = re.findall(r"<tr\b.*?</tr>", body, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def shown_messages(response) -> list[str]:
    found = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    if not found:
        return []
    return [html.unescape(m) for m in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


def site_url(site, path=""):
    return f"/sites/{site.pk}/marketo/{path}"


def actions_url(dialogue, path=""):
    return f"/sites/{dialogue.site_id}/dialogues/{dialogue.pk}/marketo/{path}"


# --- who opens what ------------------------------------------------------------------------

ADMIN_PAGES = ["", "delivery/", "outbox/"]


@pytest.mark.parametrize("page", ADMIN_PAGES)
@pytest.mark.parametrize("who", ["admin", "marketer", "agent", "outsider", "omar"])
def test_only_acmes_admins_open_the_sites_marketo_pages(client, acme, personas, page, who):
    record(acme, lead_key="secret@bigco.com")
    client.force_login(personas[who])

    response = client.get(site_url(acme, page))

    if who == "admin":
        assert response.status_code == 200
        assert "Acme: Marketo" in text(response)
    else:
        assert response.status_code == 404
        assert "Acme" not in response.content.decode()
        assert "secret@bigco.com" not in response.content.decode()


@pytest.mark.parametrize("page", ["", "new/"])
@pytest.mark.parametrize("who", ["admin", "marketer", "agent", "outsider", "omar"])
def test_acmes_admins_and_marketers_open_a_dialogues_marketo_actions(
    client, acme_dialogue, personas, page, who
):
    client.force_login(personas[who])

    response = client.get(actions_url(acme_dialogue, page))

    if who in ("admin", "marketer"):
        assert response.status_code == 200
        assert "Book a demo" in text(response)
    else:
        assert response.status_code == 404
        assert "Book a demo" not in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        lambda acme, dialogue: site_url(acme),
        lambda acme, dialogue: site_url(acme, "delivery/"),
        lambda acme, dialogue: site_url(acme, "outbox/"),
        lambda acme, dialogue: actions_url(dialogue),
        lambda acme, dialogue: actions_url(dialogue, "new/"),
    ],
)
def test_signed_out_visitors_are_sent_to_sign_in(client, acme, acme_dialogue, url):
    response = client.get(url(acme, acme_dialogue))

    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_the_pages_are_linked_for_those_who_may_open_them(client, acme, acme_dialogue, maya, mia):
    client.force_login(maya)
    assert f'href="{site_url(acme)}"' in client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    editor = client.get(f"/sites/{acme.pk}/dialogues/{acme_dialogue.pk}/edit/").content.decode()
    assert f'href="{actions_url(acme_dialogue)}"' in editor
    client.force_login(mia)
    dialogue_list = client.get(f"/sites/{acme.pk}/dialogues/").content.decode()
    assert f'href="{site_url(acme)}"' not in dialogue_list
    detail = client.get(f"/sites/{acme.pk}/dialogues/{acme_dialogue.pk}/").content.decode()
    assert f'href="{actions_url(acme_dialogue)}"' in detail


def test_every_page_says_when_marketo_is_not_configured(as_maya, acme, acme_dialogue, settings):
    settings.MARKETO_BASE_URL = ""
    for url in (site_url(acme), site_url(acme, "outbox/"), actions_url(acme_dialogue)):
        assert "Marketo is not configured, so chats send nothing to Marketo." in text(
            as_maya.get(url)
        )
    settings.MARKETO_BASE_URL = "https://123-abc-456.mktorest.com"
    settings.MARKETO_CLIENT_ID = "id"
    settings.MARKETO_CLIENT_SECRET = "secret"
    assert writeback.enabled()
    assert "Marketo is not configured" not in text(as_maya.get(site_url(acme)))


# --- the field mapping ---------------------------------------------------------------------


def capture(card_id, attribute, next_id=None):
    card = {
        "id": card_id,
        "type": "capture",
        "text": "Tell us?",
        "input_type": "text",
        "attribute": attribute,
    }
    return card | ({"next": next_id} if next_id else {})


CUSTOM_FLOW = {
    "start": "size",
    "cards": [
        capture("size", "custom:companySize", "budget"),
        capture("budget", "custom:budget", "bye"),
        {"id": "bye", "type": "end", "text": "Thanks!"},
    ],
}


def mapping_rows(response) -> list[str]:
    return table_rows(response, "field-mapping")


def input_value(response, name) -> str | None:
    found = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', response.content.decode())
    if not found:
        return None
    value = re.search(r'value="([^"]*)"', found.group(0))
    return html.unescape(value.group(1)) if value else ""


def test_the_mapping_lists_what_the_sites_dialogues_capture(as_maya, acme, globex, maya):
    published = make_published_dialogue(acme, name="Sizes", flow=CUSTOM_FLOW, user=maya)
    # The draft no longer asks for the budget; the published version still does.
    Dialogue.objects.filter(pk=published.pk).update(
        flow={"start": "size", "cards": [capture("size", "custom:companySize", "gone")]}
    )
    # A draft being edited need not be valid to count.
    Dialogue.objects.create(
        site=acme,
        name="Draft",
        flow={"start": "a", "cards": [{"id": "a", "type": "capture", "attribute": "custom:Zone"}]},
    )
    Dialogue.objects.create(
        site=globex,
        name="Theirs",
        flow={"start": "a", "cards": [{"id": "a", "type": "capture", "attribute": "custom:x"}]},
    )
    SyncSettings.objects.update_or_create(
        pk=1, defaults={"field_types": {"firstName": "string", "Budget__c": "currency"}}
    )

    response = as_maya.get(site_url(acme))

    rows = mapping_rows(response)
    assert [row.split(" ")[0] for row in rows] == [
        "email",
        "firstName",
        "lastName",
        "phone",
        "company",
        "freeText",
        "budget",
        "companySize",
        "Zone",
    ]
    assert "email the lookup field: always sent" in rows[0].replace("(email) ", "").replace(
        "— ", ""
    )
    assert input_value(response, "map-email") is None
    assert input_value(response, "map-firstName") == "firstName"
    assert input_value(response, "map-freeText") == ""
    assert input_value(response, "map-budget") == ""
    assert input_value(response, "map-x") is None
    page = response.content.decode()
    assert '<option value="Budget__c">' in page
    assert '<option value="firstName">' in page
    assert 'list="marketo-fields"' in page


def test_maya_saves_where_each_attribute_goes(as_maya, acme, maya):
    make_published_dialogue(acme, name="Sizes", flow=CUSTOM_FLOW, user=maya)

    response = as_maya.post(
        site_url(acme),
        {
            "map-firstName": "FirstName",
            "map-lastName": "lastName",
            "map-phone": "",
            "map-company": " company ",
            "map-freeText": "chatNotes",
            "map-budget": "Budget__c",
            "map-companySize": "",
        },
        follow=True,
    )

    assert shown_messages(response) == [
        "Field mapping saved. Records not sent yet are sent with it."
    ]
    assert LeadFieldMapping.objects.get(site=acme).fields == {
        "firstName": "FirstName",
        "lastName": "lastName",
        "phone": "",
        "company": "company",
        "freeText": "chatNotes",
        "budget": "Budget__c",
        "companySize": "",
    }
    assert input_value(response, "map-budget") == "Budget__c"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("first name", "“first name” is not a Marketo field name"),
        ("9lives", "“9lives” is not a Marketo field name"),
        ("x" * 101, "Ensure this value has at most 100 characters"),
        ("id", "“id” cannot be updated from the chat"),
        ("Email", "“Email” cannot be updated from the chat"),
    ],
)
def test_a_bad_field_name_is_refused_and_nothing_is_saved(as_maya, acme, typed, problem):
    response = as_maya.post(site_url(acme), {"map-firstName": typed, "map-lastName": "surname"})

    assert response.status_code == 400
    shown = text(response)
    assert "Nothing was saved: please fix the fields marked below." in shown
    assert problem in shown
    assert not LeadFieldMapping.objects.filter(site=acme).exists()


def test_the_defaults_are_shown_until_saved(as_maya, acme):
    response = as_maya.get(site_url(acme))

    for attribute, field in DEFAULT_FIELD_MAPPING.items():
        assert input_value(response, f"map-{attribute}") == field


# --- delivery status -----------------------------------------------------------------------


@pytest.fixture
def acme_records(acme, globex):
    now = timezone.now()
    record(acme, kind=Kind.ACTIVITY, status=Status.WAITING, lead_key="")
    record(acme, kind=Kind.ACTIVITY, status=Status.WAITING, lead_key="")
    record(acme, kind=Kind.LEAD, status=Status.PENDING, created_at=now - timedelta(minutes=42))
    record(acme, kind=Kind.CAMPAIGN, status=Status.PENDING)
    record(acme, kind=Kind.PROGRAM_STATUS, status=Status.PARKED)
    for hours in (1, 23, 72, 200):  # the last one is older than a week
        record(
            acme,
            kind=Kind.ACTIVITY,
            status=Status.DELIVERED,
            delivered_at=now - timedelta(hours=hours),
        )
    record(globex, kind=Kind.ACTIVITY, status=Status.PARKED, lead_key="x@globex.test")
    record(globex, kind=Kind.LEAD, status=Status.PENDING, created_at=now - timedelta(days=3))


def test_the_delivery_page_counts_acmes_records_by_kind(as_maya, acme, acme_records):
    response = as_maya.get(site_url(acme, "delivery/"))

    assert table_rows(response, "delivery-counts") == [
        "Lead upsert 0 1 0 0 0",
        "Cookie association 0 0 0 0 0",
        "Activity 2 0 0 2 3",
        "Program status 0 0 1 0 0",
        "Campaign request 0 1 0 0 0",
    ]
    assert "All 2 2 1 2 3" in text(response)
    assert "Oldest pending record: written 42 minutes ago" in text(response)


def test_the_delivery_page_tells_the_current_problem(as_maya, acme, settings):
    settings.TIME_ZONE = "UTC"
    since = timezone.now() - timedelta(hours=2)
    DeliveryState.objects.update_or_create(
        pk=1,
        defaults={
            "last_run_at": timezone.now() - timedelta(minutes=1),
            "problem_code": "607",
            "problem_message": "Daily quota reached",
            "problem_since": since,
            "resume_at": timezone.now() + timedelta(hours=5),
        },
    )

    shown = text(as_maya.get(site_url(acme, "delivery/")))

    assert "Problem 607 Daily quota reached since" in shown
    assert "Marketo's daily API quota is used up" in shown  # the hint
    assert "Records wait meanwhile; none is parked for it." in shown
    assert "Sending again" in shown and "(Marketo's daily quota is used up until then)" in shown
    assert "Last run" in shown and "1 minute ago" in shown
    assert "Last delivery Nothing delivered yet" in shown
    assert "No record is pending." in shown


def test_without_a_problem_it_says_none(as_maya, acme):
    assert "Problem None" in text(as_maya.get(site_url(acme, "delivery/")))


def test_the_figures_refresh_themselves_with_htmx(as_maya, acme, acme_records):
    page = as_maya.get(site_url(acme, "delivery/"))
    body = page.content.decode()
    assert 'hx-trigger="every 5s"' in body
    assert f'hx-get="{site_url(acme, "delivery/")}"' in body
    assert f'<a href="{site_url(acme, "delivery/")}">Refresh now</a>' in body

    record(acme, kind=Kind.COOKIE, status=Status.PENDING)
    fragment = as_maya.get(site_url(acme, "delivery/"), HTTP_HX_REQUEST="true")

    assert fragment.status_code == 200
    assert "HX-Request" in fragment["Vary"]
    part = fragment.content.decode()
    assert "<html" not in part and 'id="delivery-status"' in part
    assert table_rows(fragment, "delivery-counts")[1] == "Cookie association 0 1 0 0 0"


# --- the outbox ----------------------------------------------------------------------------


def outbox_rows(response) -> list[str]:
    return table_rows(response, "outbox-table")


def test_the_outbox_shows_parked_records_newest_first(as_maya, acme, globex):
    upsert = record(acme, kind=Kind.LEAD, error_code="1006", error_message="Field 'x' not found")
    activity = record(acme, kind=Kind.ACTIVITY, error_code="lead_parked", error_message="Waits")
    record(acme, kind=Kind.ACTIVITY, status=Status.PENDING)
    record(globex, kind=Kind.ACTIVITY, lead_key="x@globex.test")

    response = as_maya.get(site_url(acme, "outbox/"))

    rows = outbox_rows(response)
    assert len(rows) == 2
    assert rows[0].startswith(f"{activity.pk} Activity ann@bigco.com ")
    assert "Reached Dialogue Goal: Book a demo, goal “Email captured”" in rows[0]
    assert rows[0].endswith("5 lead_parked Waits Retry Discard…")
    assert rows[1].startswith(
        f"{upsert.pk} Lead upsert ann@bigco.com Ann@BigCo.com: firstName “Ann”"
    )
    assert "1006 Field 'x' not found" in rows[1]
    assert "2 parked records." in text(response)
    assert "Retry all parked records (2)" in text(response)


def test_each_kind_reads_as_what_it_sends(as_maya, acme):
    record(acme, kind=Kind.COOKIE)
    record(acme, kind=Kind.PROGRAM_STATUS)
    record(
        acme,
        kind=Kind.CAMPAIGN,
        payload={
            "campaign_id": 3001,
            "campaign_name": "Send the deck",
            "tokens": [
                {"name": "{{my.Goal}}", "value": "Email captured"},
                {"name": "{{my.Agent}}", "bind": "agent_name"},
            ],
        },
    )
    record(acme, kind=Kind.ACTIVITY, status=Status.WAITING, lead_key="")

    rows = outbox_rows(as_maya.get(site_url(acme, "outbox/")))
    assert "Send the deck with {{my.Goal}} = “Email captured”, {{my.Agent}} = Agent name" in rows[0]
    assert "Webinar → Attended" in rows[1]
    assert "The visitor's Munchkin cookie" in rows[2]

    waiting = outbox_rows(as_maya.get(site_url(acme, "outbox/?status=waiting")))
    assert len(waiting) == 1 and " Activity anonymous Reached Dialogue Goal" in waiting[0]


def test_the_outbox_filters_by_status_and_kind(as_maya, acme):
    record(acme, kind=Kind.LEAD, status=Status.DELIVERED, delivered_at=timezone.now())
    record(acme, kind=Kind.ACTIVITY, status=Status.DELIVERED, delivered_at=timezone.now())
    record(acme, kind=Kind.ACTIVITY, status=Status.PENDING)

    delivered = outbox_rows(as_maya.get(site_url(acme, "outbox/?status=delivered")))
    only_leads = outbox_rows(as_maya.get(site_url(acme, "outbox/?status=delivered&kind=lead")))
    pending = as_maya.get(site_url(acme, "outbox/?status=pending&kind=lead"))

    assert len(delivered) == 2
    assert len(only_leads) == 1 and " Lead upsert " in only_leads[0]
    assert "Retry" not in only_leads[0]
    assert outbox_rows(pending) == ["No records here."]
    # A status that is not one falls back to the parked records.
    assert "0 parked records." in text(as_maya.get(site_url(acme, "outbox/?status=bogus")))


def test_the_outbox_shows_fifty_records_a_page_and_htmx_gets_the_results_alone(as_maya, acme):
    first = record(acme)
    for _ in range(50):
        record(acme)

    page_one = as_maya.get(site_url(acme, "outbox/"))
    page_two = as_maya.get(site_url(acme, "outbox/?status=parked&page=2"), HTTP_HX_REQUEST="true")

    assert len(outbox_rows(page_one)) == 50
    assert "Page 1 of 2" in text(page_one)
    assert "<html" not in page_two.content.decode()
    assert [row.split(" ")[0] for row in outbox_rows(page_two)] == [str(first.pk)]
    assert "HX-Request" in page_two["Vary"]


def test_retrying_a_parked_record_queues_it_now(
    as_maya, acme, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # kick() starts nothing in the embedded mode
    parked = record(acme, claimed_until=timezone.now())
    other = record(acme)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_maya.post(
            site_url(acme, f"outbox/{parked.pk}/retry/"),
            {"next": site_url(acme, "outbox/?kind=activity")},
        )

    assert response.status_code == 302
    assert response.url == site_url(acme, "outbox/?kind=activity")
    parked.refresh_from_db()
    assert parked.status == Status.PENDING
    assert parked.attempts == 0
    assert parked.next_attempt_at >= before
    assert parked.claimed_until is None
    assert (parked.error_code, parked.error_message) == ("", "")
    other.refresh_from_db()
    assert other.status == Status.PARKED
    assert writeback.kick in callbacks
    followed = as_maya.get(response.url)
    assert shown_messages(followed) == [f"Record #{parked.pk} will be sent again."]
    assert str(parked.pk) not in [row.split(" ")[0] for row in outbox_rows(followed)]


def test_retrying_a_lead_upsert_takes_the_records_that_waited_for_it(as_maya, acme, globex):
    upsert = record(acme, kind=Kind.LEAD)
    waited = [
        record(acme, kind=Kind.ACTIVITY, error_code="lead_parked"),
        record(acme, kind=Kind.CAMPAIGN, error_code="lead_parked"),
    ]
    refused_on_its_own = record(acme, kind=Kind.ACTIVITY, error_code="1003")
    another_lead = record(acme, kind=Kind.ACTIVITY, error_code="lead_parked", lead_key="bo@x.com")

    response = as_maya.post(site_url(acme, f"outbox/{upsert.pk}/retry/"), follow=True)

    assert shown_messages(response) == [
        f"Record #{upsert.pk} will be sent again, followed by 2 of the lead's records that "
        "waited for it."
    ]
    statuses = dict(OutboxRecord.objects.values_list("pk", "status"))
    assert statuses[upsert.pk] == Status.PENDING
    assert [statuses[r.pk] for r in waited] == [Status.PENDING, Status.PENDING]
    assert statuses[refused_on_its_own.pk] == Status.PARKED
    assert statuses[another_lead.pk] == Status.PARKED


def test_retry_all_queues_every_parked_record_of_acme_only(as_maya, acme, globex):
    mine = [record(acme), record(acme, kind=Kind.LEAD), record(acme, kind=Kind.COOKIE)]
    pending = record(acme, status=Status.PENDING, attempts=3, error_code="606")
    theirs = record(globex, lead_key="x@globex.test")

    response = as_maya.post(site_url(acme, "outbox/retry/"), follow=True)

    assert shown_messages(response) == ["3 parked records will be sent again."]
    assert set(
        OutboxRecord.objects.filter(pk__in=[r.pk for r in mine]).values_list("status", flat=True)
    ) == {Status.PENDING}
    pending.refresh_from_db()
    assert (pending.attempts, pending.error_code) == (3, "606")  # untouched
    theirs.refresh_from_db()
    assert theirs.status == Status.PARKED
    assert outbox_rows(response) == ["No records here."]
    again = as_maya.post(site_url(acme, "outbox/retry/"), follow=True)
    assert shown_messages(again) == ["No record is parked."]


def test_only_parked_records_are_retried(as_maya, acme):
    pending = record(acme, status=Status.PENDING, attempts=2, error_code="606")

    response = as_maya.post(site_url(acme, f"outbox/{pending.pk}/retry/"), follow=True)

    assert shown_messages(response) == [
        f"Record #{pending.pk} is not parked: only parked records are retried."
    ]
    pending.refresh_from_db()
    assert (pending.status, pending.attempts, pending.error_code) == (Status.PENDING, 2, "606")


def test_discarding_asks_first_then_deletes_the_record(as_maya, acme):
    parked = record(acme, kind=Kind.PROGRAM_STATUS)
    outbox = site_url(acme, "outbox/?kind=program_status")

    confirm = as_maya.get(site_url(acme, f"outbox/{parked.pk}/discard/"), {"next": outbox})

    assert confirm.status_code == 200
    shown = text(confirm)
    assert f"Discard record {parked.pk}?" in shown
    assert "What Webinar → Attended" in shown
    assert "A discarded record is deleted and never sent to Marketo." in shown
    assert f'<a href="{html.escape(outbox)}">Keep it</a>' in confirm.content.decode()
    assert OutboxRecord.objects.filter(pk=parked.pk).exists()

    response = as_maya.post(site_url(acme, f"outbox/{parked.pk}/discard/"), {"next": outbox})

    assert response.url == outbox
    assert not OutboxRecord.objects.filter(pk=parked.pk).exists()
    assert shown_messages(as_maya.get(response.url)) == [
        f"Record #{parked.pk} is discarded: it will not be sent."
    ]


def test_only_parked_records_are_discarded(as_maya, acme):
    waiting = record(acme, status=Status.WAITING, lead_key="")

    confirm = as_maya.get(site_url(acme, f"outbox/{waiting.pk}/discard/"))
    response = as_maya.post(site_url(acme, f"outbox/{waiting.pk}/discard/"), follow=True)

    assert "This record is waiting for the visitor's email: only parked records can be" in text(
        confirm
    )
    assert "<button" not in confirm.content.decode().split('class="card"')[1]
    assert shown_messages(response) == [
        f"Record #{waiting.pk} was not discarded. Only parked records can be discarded."
    ]
    assert OutboxRecord.objects.filter(pk=waiting.pk).exists()


def test_a_link_back_elsewhere_is_not_followed(as_maya, acme):
    parked = record(acme)

    confirm = as_maya.get(
        site_url(acme, f"outbox/{parked.pk}/discard/"), {"next": "javascript:alert(1)"}
    )
    response = as_maya.post(
        site_url(acme, f"outbox/{parked.pk}/retry/"), {"next": "https://evil.test/"}
    )

    assert "javascript:" not in confirm.content.decode()
    assert response.url == site_url(acme, "outbox/")


def test_another_sites_record_is_a_404_whoever_asks(client, acme, globex, maya, omar):
    theirs = record(globex, lead_key="x@globex.test")
    mine = record(acme)

    client.force_login(maya)
    for path in (f"outbox/{theirs.pk}/retry/", f"outbox/{theirs.pk}/discard/"):
        assert client.post(site_url(acme, path)).status_code == 404
    assert client.get(site_url(acme, f"outbox/{theirs.pk}/discard/")).status_code == 404
    client.force_login(omar)
    for path in (f"outbox/{mine.pk}/retry/", f"outbox/{mine.pk}/discard/"):
        assert client.post(site_url(globex, path)).status_code == 404
        assert client.post(site_url(acme, path)).status_code == 404
    assert client.post(site_url(acme, "outbox/retry/")).status_code == 404

    assert set(OutboxRecord.objects.values_list("status", flat=True)) == {Status.PARKED}
    assert OutboxRecord.objects.count() == 2


@pytest.mark.parametrize("who", ["marketer", "agent"])
def test_acmes_other_roles_cannot_retry_or_discard(client, acme, personas, who):
    parked = record(acme)
    client.force_login(personas[who])

    assert client.post(site_url(acme, f"outbox/{parked.pk}/retry/")).status_code == 404
    assert client.post(site_url(acme, "outbox/retry/")).status_code == 404
    assert client.post(site_url(acme, f"outbox/{parked.pk}/discard/")).status_code == 404
    assert client.post(site_url(acme), {"map-firstName": "hijacked"}).status_code == 404

    parked.refresh_from_db()
    assert parked.status == Status.PARKED
    assert not LeadFieldMapping.objects.filter(site=acme).exists()


# --- a dialogue's Marketo actions ----------------------------------------------------------

WEBINAR_STATUSES = ["Not in Program", "Invited", "Registered", "Attended"]
DEMO_STATUSES = ["Not in Program", "Requested", "Demo held"]


@pytest.fixture
def catalogue_rows(db):
    """Programs and campaigns as a refresh from Marketo left them."""
    now = timezone.now()
    webinar = MarketoProgram.objects.create(
        id=1001, name="Webinar", channel="Webinar", statuses=WEBINAR_STATUSES, synced_at=now
    )
    demos = MarketoProgram.objects.create(
        id=1002, name="Demo requests", channel="Sales", statuses=DEMO_STATUSES, synced_at=now
    )
    deck = MarketoCampaign.objects.create(id=3001, name="Send the deck", synced_at=now)
    MarketoCampaign.objects.create(id=3002, name="Old nurture", active=False, synced_at=now)
    return webinar, demos, deck


def goal_action(**overrides) -> dict:
    """What Mia posts for "on reaching Email captured: Webinar → Attended, Send the deck"."""
    return {
        "on": "goal",
        "goal": "Email captured",
        "program": "1001",
        "status": "Attended",
        "campaign": "3001",
        "token_name_0": "{{my.Goal Name}}",
        "token_value_0": "goal",
        "token_name_1": "{{my.Page}}",
        "token_value_1": "page_url",
        **overrides,
    }


def options(response, select_name) -> list[str]:
    found = re.search(
        rf'<select[^>]*name="{select_name}"[^>]*>(.*?)</select>', response.content.decode(), re.S
    )
    assert found, f"no select {select_name}"
    return [html.unescape(o) for o in re.findall(r"<option[^>]*>(.*?)</option>", found.group(1))]


def selected(response, select_name) -> str:
    found = re.search(
        rf'<select[^>]*name="{select_name}"[^>]*>(.*?)</select>', response.content.decode(), re.S
    )
    chosen = re.search(r'<option value="([^"]*)"[^>]*selected', found.group(1))
    return html.unescape(chosen.group(1)) if chosen else ""


def test_mia_adds_a_goal_action_and_sees_it_listed(as_mia, acme_dialogue, catalogue_rows):
    response = as_mia.post(actions_url(acme_dialogue, "new/"), goal_action(), follow=True)

    assert shown_messages(response) == ["Marketo action saved."]
    assert table_rows(response, "action-table") == [
        "Visitor reaches a goal: “Email captured” Webinar → Attended Send the deck "
        "{{my.Goal Name}} = Goal name {{my.Page}} = Page URL Edit Delete"
    ]
    action = MarketoAction.objects.get(dialogue=acme_dialogue)
    assert (action.on, action.goal) == ("goal", "Email captured")
    assert (action.program_id, action.program_name, action.program_status) == (
        1001,
        "Webinar",
        "Attended",
    )
    assert (action.campaign_id, action.campaign_name) == (3001, "Send the deck")
    assert action.tokens == [
        {"name": "{{my.Goal Name}}", "value": "goal"},
        {"name": "{{my.Page}}", "value": "page_url"},
    ]


def test_the_form_offers_the_dialogues_goals_programs_and_active_campaigns(
    as_mia, acme_dialogue, catalogue_rows
):
    # The draft has a new goal; the published version's is still offered.
    flow = {**EVERY_CARD_FLOW, "cards": [dict(c) for c in EVERY_CARD_FLOW["cards"]]}
    next(c for c in flow["cards"] if c["type"] == "goal")["name"] = "Demo wanted"
    Dialogue.objects.filter(pk=acme_dialogue.pk).update(flow=flow)

    response = as_mia.get(actions_url(acme_dialogue, "new/"))

    assert options(response, "on") == [
        "Visitor engages",
        "Visitor reaches a goal",
        "Visitor books a meeting",
    ]
    assert options(response, "goal") == ["Any goal", "Demo wanted", "Email captured"]
    assert options(response, "program") == ["No program", "Demo requests", "Webinar"]
    assert options(response, "status") == ["Choose a program first"]
    assert options(response, "campaign") == ["No campaign", "Send the deck"]
    assert options(response, "token_value_0") == ["—", *writeback.TOKEN_VALUES.values()]
    assert "Programs and campaigns as read from Marketo on" in text(response)
    assert "2 programs, 1 active campaign." in text(response)


def test_a_changed_program_brings_its_statuses_with_htmx(as_mia, acme_dialogue, catalogue_rows):
    form = as_mia.get(actions_url(acme_dialogue, "new/")).content.decode()
    program_select = re.search(r'<select[^>]*name="program"[^>]*>', form).group(0)
    assert f'hx-get="{actions_url(acme_dialogue, "statuses/")}"' in program_select
    assert 'hx-target="#status-field"' in program_select

    fragment = as_mia.get(
        actions_url(acme_dialogue, "statuses/"), {"program": "1002"}, HTTP_HX_REQUEST="true"
    )

    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<html" not in body and 'id="status-field"' in body
    assert options(fragment, "status") == ["Choose a status", *DEMO_STATUSES]
    nothing = as_mia.get(actions_url(acme_dialogue, "statuses/"), {"program": ""})
    assert options(nothing, "status") == ["Choose a program first"]


def test_without_javascript_the_program_button_shows_its_statuses_and_saves_nothing(
    as_mia, acme_dialogue, catalogue_rows
):
    response = as_mia.post(
        actions_url(acme_dialogue, "new/"),
        goal_action(program="1002", status="Attended", show_statuses="1"),
    )

    assert response.status_code == 200
    assert "Nothing was saved" not in text(response)
    assert options(response, "status") == ["Choose a status", *DEMO_STATUSES]
    assert selected(response, "program") == "1002"
    assert selected(response, "campaign") == "3001"
    assert input_value(response, "token_name_0") == "{{my.Goal Name}}"
    assert not MarketoAction.objects.exists()


@pytest.mark.parametrize(
    ("posted", "problem"),
    [
        (
            {"program": "", "campaign": "", "token_name_0": "", "token_value_0": ""}
            | {"token_name_1": "", "token_value_1": ""},
            "Choose a program status to set, a campaign to request, or both.",
        ),
        ({"status": ""}, "Choose the status to set in Webinar."),
        (
            {"status": "Requested"},
            "“Requested” is not a status of Webinar: choose one of its statuses.",
        ),
        ({"program": "1003"}, "Select a valid choice. 1003 is not one of the available choices."),
        ({"on": "engaged"}, "A goal is chosen only for “Visitor reaches a goal”"),
        ({"campaign": "3002"}, "Select a valid choice. 3002 is not one of the available choices."),
        (
            {"token_name_0": "Goal Name"},
            "“Goal Name” is not a program token: write it as {{my.Token Name}}.",
        ),
        ({"token_name_0": "{{my.}}"}, "is not a program token"),
        ({"token_name_1": "{{my.goal name}}"}, "{{my.goal name}} is given twice."),
        ({"token_value_0": ""}, "Choose what the token carries."),
        ({"token_name_0": ""}, "Name the token, such as {{my.Goal Name}}."),
        ({"token_value_1": "password"}, "Select a valid choice."),
        ({"campaign": ""}, "Tokens go to a campaign: choose one, or clear them."),
    ],
)
def test_a_bad_action_is_refused_and_nothing_is_saved(
    as_mia, acme_dialogue, catalogue_rows, posted, problem
):
    response = as_mia.post(actions_url(acme_dialogue, "new/"), goal_action(**posted))

    assert response.status_code == 400
    shown = text(response)
    assert "Nothing was saved: please fix the fields marked below." in shown
    assert problem in shown
    assert not MarketoAction.objects.exists()


def test_a_program_alone_or_a_campaign_alone_is_enough(as_mia, acme_dialogue, catalogue_rows):
    program_only = goal_action(
        on="engaged", goal="", campaign="", token_name_0="", token_value_0=""
    ) | {"token_name_1": "", "token_value_1": ""}
    campaign_only = goal_action(on="meeting", goal="", program="", status="Whatever")

    assert as_mia.post(actions_url(acme_dialogue, "new/"), program_only).status_code == 302
    assert as_mia.post(actions_url(acme_dialogue, "new/"), campaign_only).status_code == 302

    engaged = MarketoAction.objects.get(on="engaged")
    assert (engaged.program_name, engaged.program_status, engaged.campaign_id) == (
        "Webinar",
        "Attended",
        None,
    )
    meeting = MarketoAction.objects.get(on="meeting")
    assert (meeting.program_id, meeting.program_status, meeting.campaign_name) == (
        None,
        "",
        "Send the deck",
    )


def test_one_action_per_event_is_a_form_error(as_mia, acme_dialogue, catalogue_rows):
    as_mia.post(actions_url(acme_dialogue, "new/"), goal_action())
    as_mia.post(actions_url(acme_dialogue, "new/"), goal_action(goal=""))  # any goal: another

    again = as_mia.post(actions_url(acme_dialogue, "new/"), goal_action(status="Registered"))
    any_again = as_mia.post(actions_url(acme_dialogue, "new/"), goal_action(goal=""))

    assert again.status_code == 400
    assert (
        "This dialogue already has an action on reaching the goal “Email captured”: edit that "
        "one instead." in text(again)
    )
    assert "already has an action on reaching any goal" in text(any_again)
    assert MarketoAction.objects.count() == 2
    assert MarketoAction.objects.get(goal="Email captured").program_status == "Attended"


def test_the_service_refuses_a_second_action_for_an_event(acme_dialogue):
    services.save_action(dialogue=acme_dialogue, on="engaged", campaign_id=3001)

    with pytest.raises(services.WritebackRefused, match="already has an action on engaging"):
        services.save_action(dialogue=acme_dialogue, on="engaged", program_id=1, program_status="x")
    with pytest.raises(services.WritebackRefused, match="a campaign to request"):
        services.save_action(dialogue=acme_dialogue, on="meeting")
    assert MarketoAction.objects.count() == 1


def test_mia_edits_an_action(as_mia, acme_dialogue, catalogue_rows):
    as_mia.post(actions_url(acme_dialogue, "new/"), goal_action())
    action = MarketoAction.objects.get()

    form = as_mia.get(actions_url(acme_dialogue, f"{action.pk}/"))
    assert selected(form, "program") == "1001"
    assert selected(form, "status") == "Attended"
    assert options(form, "status") == ["Choose a status", *WEBINAR_STATUSES]
    assert input_value(form, "token_name_1") == "{{my.Page}}"

    response = as_mia.post(
        actions_url(acme_dialogue, f"{action.pk}/"),
        goal_action(program="1002", status="Demo held", token_name_1="", token_value_1=""),
    )

    assert response.status_code == 302
    action.refresh_from_db()
    assert (action.program_name, action.program_status) == ("Demo requests", "Demo held")
    assert action.tokens == [{"name": "{{my.Goal Name}}", "value": "goal"}]
    assert MarketoAction.objects.count() == 1


def test_a_program_gone_from_marketo_stays_offered_on_its_action(
    as_mia, acme_dialogue, catalogue_rows
):
    as_mia.post(actions_url(acme_dialogue, "new/"), goal_action())
    action = MarketoAction.objects.get()
    MarketoProgram.objects.filter(pk=1001).delete()

    form = as_mia.get(actions_url(acme_dialogue, f"{action.pk}/"))
    saved = as_mia.post(actions_url(acme_dialogue, f"{action.pk}/"), goal_action(goal=""))

    assert "Webinar (not found in Marketo)" in options(form, "program")
    assert options(form, "status") == ["Choose a status", "Attended"]
    assert saved.status_code == 302
    action.refresh_from_db()
    assert (action.goal, action.program_id, action.program_status) == ("", 1001, "Attended")


def test_mia_deletes_an_action(as_mia, acme_dialogue, catalogue_rows):
    action = services.save_action(dialogue=acme_dialogue, on="engaged", campaign_id=3001)

    response = as_mia.post(actions_url(acme_dialogue, f"{action.pk}/delete/"), follow=True)

    assert shown_messages(response) == ["Marketo action deleted."]
    assert not MarketoAction.objects.exists()
    assert "No actions: this dialogue's events reach Marketo as activities only." in text(response)


def test_another_dialogues_action_is_a_404_here(client, acme, acme_dialogue, maya, mia, omar):
    other = make_published_dialogue(acme, name="Other", user=maya)
    theirs = MarketoAction.objects.create(dialogue=other, on="engaged", campaign_id=3001)
    client.force_login(mia)

    assert client.get(actions_url(acme_dialogue, f"{theirs.pk}/")).status_code == 404
    assert client.post(actions_url(acme_dialogue, f"{theirs.pk}/delete/")).status_code == 404
    client.force_login(omar)
    assert client.post(actions_url(other, f"{theirs.pk}/delete/")).status_code == 404
    assert client.post(actions_url(other, "new/"), goal_action(on="meeting")).status_code == 404
    assert client.post(actions_url(other, "refresh/")).status_code == 404

    assert list(MarketoAction.objects.all()) == [theirs]


# --- reading Marketo's lists again ---------------------------------------------------------


def test_refresh_reads_programs_and_campaigns_from_marketo(
    as_mia, acme_dialogue, marketo, marketo_settings
):
    marketo.add_channel("Tradeshow", ["Registered", {"name": "Visited Booth", "success": True}])
    show = marketo.add_program("Spring show", channel="Tradeshow")
    marketo.add_campaign("Booth follow-up", program_id=show)
    marketo.add_campaign("Paused nurture", active=False)
    marketo.add_campaign("Batch mailing", triggerable=False)

    response = as_mia.post(actions_url(acme_dialogue, "refresh/"), follow=True)

    assert shown_messages(response) == ["Read from Marketo: 1 program and 2 requestable campaigns."]
    assert "1 program, 1 active campaign." in text(response)
    program = MarketoProgram.objects.get()
    assert (program.id, program.name) == (show, "Spring show")
    assert program.statuses == ["Not in Program", "Registered", "Visited Booth"]
    form = as_mia.get(actions_url(acme_dialogue, "new/"))
    assert options(form, "campaign") == ["No campaign", "Booth follow-up"]
    statuses = as_mia.get(actions_url(acme_dialogue, "statuses/"), {"program": str(show)})
    assert options(statuses, "status") == ["Choose a status", *program.statuses]


def test_a_refresh_marketo_refuses_says_why_and_keeps_the_lists(
    as_mia, acme_dialogue, catalogue_rows, marketo, marketo_settings
):
    marketo.deny_permission("/rest/asset/v1/programs.json")

    response = as_mia.post(actions_url(acme_dialogue, "refresh/"), follow=True)

    [message] = shown_messages(response)
    assert message.startswith("The lists could not be read from Marketo: ")
    assert "The API user's role lacks a permission" in message
    assert MarketoProgram.objects.count() == 2


def test_without_marketo_the_refresh_says_what_to_set(as_mia, acme_dialogue, settings):
    settings.MARKETO_BASE_URL = ""

    page = as_mia.get(actions_url(acme_dialogue))
    response = as_mia.post(actions_url(acme_dialogue, "refresh/"), follow=True)

    assert "Programs and campaigns have not been read from Marketo yet." in text(page)
    assert re.search(r"<button[^>]*disabled[^>]*>Refresh lists from Marketo", page.content.decode())
    [message] = shown_messages(response)
    assert "Set MARKETO_BASE_URL, MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET" in message
