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
from marketo_sync.models import (
    DEFAULT_FIELD_MAPPING,
    DeliveryState,
    LeadFieldMapping,
    OutboxRecord,
    SyncSettings,
)
from tests.conftest import _user, make_published_dialogue

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role
Kind = OutboxRecord.Kind
Status = OutboxRecord.Status


# --- people and things ---------------------------------------------------------------------


@pytest.fixture
def mia(acme):
    user = _user("mia")
    dialogue_services.add_member(site=acme, user=user, role=Role.MARKETER)
    return user


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
        f"Record #{waiting.pk} was not discarded: Only parked records can be discarded."
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
