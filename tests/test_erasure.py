"""Erasing a person at their request (reports/erasure.py, manage.py erase_person, the privacy
page): afterwards no table holds their address, name, phone or company anywhere; their
meetings stay, blank; the reports keep their counts; the erasure is logged without the address.

The story: Zyanya Quistgaard of Quokkaworks (zyanya@bigco.com) chatted on Acme's site from three
browsers: she booked a meeting from one (and cancelled another, saying why), told the chat her
address from a second, and a third is known only by her Marketo cookie. A fourth browser typed
her address once and then gave another one. Marketo synced her lead and its activities, and
DynChat learnt her lead id. Bo, another of Acme's visitors, and Globex's visitor with the same
address (another company's data) must be left alone."""

import hashlib
import hmac
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone

from dialogues.models import Membership
from marketo_sync.models import Activity, KnownLead, Lead, OutboxRecord
from meetings.cancellation import cancel_meeting
from meetings.models import Meeting
from reports import erasure
from reports.models import Erasure
from tests.conftest import GLOBEX_ORIGIN, PAGE_URL, WidgetClient, make_published_dialogue
from tests.meeting_factories import make_meeting
from tests.test_booking import book, first_slot
from tests.test_marketo_writeback import writeback_on  # noqa: F401
from tests.test_retention import counted_tables, report_tables
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

pytestmark = pytest.mark.usefixtures("writeback_on")

EMAIL = "zyanya@bigco.com"
LEAD_ID = 501
COOKIE_TOKEN = "_mch-www.acme.test-1718000000000-50150"
COOKIE = f"id:561-HYG-937&token:{COOKIE_TOKEN}"
# What must be nowhere once she is erased: her address, names, company, phone, cookie.
HER = ("zyanya@bigco.com", "Zyanya", "Quistgaard", "Quokkaworks", "+14155550199", COOKIE_TOKEN)
ANSWERS = ("yes", "Zyanya", "Zyanya@BigCo.com", "+1 415 555 0199")


# --- the story ------------------------------------------------------------------------------


def session(widget, **body) -> str:
    response = widget.post("/sessions", {"page_url": PAGE_URL, **body})
    assert response.status_code == 200, response.content
    return response.json()["visitor_id"]


def identify(widget, visitor_id, **fields):
    response = widget.post("/visitors/identify", {"visitor_id": visitor_id, **fields})
    assert response.status_code == 200, response.content


def walk(widget, dialogue, visitor_id, *answers) -> dict:
    conversation = widget.start_conversation(dialogue, visitor_id=visitor_id)
    for value in answers:
        response = widget.answer(conversation, value)
        assert response.status_code == 200, response.content
        conversation = {**conversation, **response.json()}
    return conversation


@pytest.fixture
def synced_lead(db):
    """Her lead as the Marketo sync stored it, with two activities, and the id DynChat learnt
    when it upserted her."""
    lead = Lead.objects.create(
        id=LEAD_ID,
        email="Zyanya@BigCo.com",
        cookies=COOKIE_TOKEN,
        updated_at=timezone.now(),
        attributes={"firstName": "Zyanya", "lastName": "Quistgaard", "phone": "+14155550199"},
    )
    for n in (1, 2):
        Activity.objects.create(
            marketo_guid=f"zq-{n}",
            lead_id=LEAD_ID,
            activity_date=timezone.now() - timedelta(days=n),
            activity_type_id=1,
            attributes={"Webpage URL": f"https://www.acme.test/?email={EMAIL}"},
        )
    KnownLead.objects.create(lead_key=EMAIL, lead_id=LEAD_ID)
    return lead


@pytest.fixture
def zyanya(acme_widget, acme, acme_dialogue, alex, synced_lead):
    """Everything Acme's site holds about her."""
    widget = acme_widget
    # Browser 1: the host page knew her last name and company; she booked a meeting...
    first = session(widget)
    identify(widget, first, lastName="Quistgaard", company="Quokkaworks")
    booked = walk(widget, acme_dialogue, first, *ANSWERS)
    assert book(widget, booked, first_slot(widget, booked)).status_code == 201
    # ... and an earlier meeting she cancelled herself, saying why.
    cancelled = make_meeting(
        acme,
        alex,
        start=timezone.now() + timedelta(days=3),
        lead_email="Zyanya@BigCo.com",
        first_name="Zyanya",
        last_name="Quistgaard",
        company="Quokkaworks",
    )
    cancel_meeting(meeting_id=cancelled.pk, reason="Zyanya Quistgaard is travelling")
    # Browser 2: the chat was told her address.
    second = session(widget)
    identify(widget, second, email=EMAIL, firstName="Zyanya")
    walk(widget, acme_dialogue, second, "no")
    # Browser 3: known only by her Munchkin cookie, which resolves to her synced lead.
    third = session(widget)
    identify(widget, third, mkto_trk=COOKIE)
    walk(widget, acme_dialogue, third, "yes")
    assert Visitor.objects.filter(marketo_lead_id=LEAD_ID, email="").count() == 1
    # Browser 4: Pat typed her address once, then gave their own.
    fourth = session(widget)
    identify(widget, fourth, firstName="Pat")
    walk(widget, acme_dialogue, fourth, "yes", "Zyanya@BigCo.com")
    identify(widget, fourth, email="pat@elsewhere.com")
    return {"pat": Visitor.objects.get(email="pat@elsewhere.com")}


@pytest.fixture
def bo(acme_widget, acme_dialogue):
    """Another of Acme's visitors, who must keep everything."""
    visitor_id = session(acme_widget)
    walk(acme_widget, acme_dialogue, visitor_id, "yes", "Bo", "bo@othercorp.com")
    return Visitor.objects.get(email="bo@othercorp.com")


@pytest.fixture
def globex_zyanya(client, globex, omar, settings):
    """Globex's visitor with her address: another company's data."""
    settings.ALLOWED_HOSTS = ["*"]
    widget = WidgetClient(client, globex, origin=GLOBEX_ORIGIN)
    dialogue = make_published_dialogue(globex, name="Globex demo", user=omar)
    visitor_id = session(widget)
    walk(widget, dialogue, visitor_id, "yes", "Zyanya", EMAIL)
    return Visitor.objects.get(site=globex)


def traces(*needles: str) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text or JSON column of every table that holds one of
    `needles` (case-insensitive, anywhere in the value)."""
    found = []
    textual = (models.CharField, models.TextField, models.JSONField)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            table = model._meta.db_table
            for field in model._meta.concrete_fields:
                if not isinstance(field, textual):
                    continue
                for needle in needles:
                    cursor.execute(
                        f"SELECT 1 FROM {quote(table)}"  # noqa: S608 - names from the models
                        f" WHERE {quote(field.column)}::text ILIKE %s LIMIT 1",
                        [f"%{needle}%"],
                    )
                    if cursor.fetchone():
                        found.append((table, field.column, needle))
    return sorted(found)


def kept_of(visitor: Visitor) -> dict:
    conversations = Conversation.objects.filter(visitor=visitor)
    return {
        "visitor": Visitor.objects.filter(pk=visitor.pk).values("email", "attributes").first(),
        "conversations": conversations.count(),
        "lines": TranscriptEntry.objects.filter(conversation__in=conversations).count(),
        "events": ConversationEvent.objects.filter(conversation__in=conversations).count(),
        "records": OutboxRecord.objects.filter(visitor=visitor).count(),
    }


# --- erasing ---------------------------------------------------------------------------------


def test_after_erasing_her_no_table_holds_anything_of_hers(zyanya, bo, acme, alex):
    assert {table for table, _, _ in traces(*HER)} >= {
        "widget_visitor",
        "widget_conversation",
        "widget_transcriptentry",
        "widget_conversationevent",
        "marketo_sync_outboxrecord",
        "marketo_sync_knownlead",
        "marketo_sync_lead",
        "marketo_sync_activity",
        "meetings_meeting",
    }
    bo_before = kept_of(bo)
    meetings = Meeting.objects.count()

    done = erasure.erase_person(EMAIL, reference="Ticket 4711")

    assert traces(*HER) == []
    assert kept_of(bo) == bo_before
    # Her meetings stay for the agent's figures, with nothing of hers.
    assert Meeting.objects.count() == meetings
    blank = Meeting.objects.filter(lead_email="")
    assert blank.count() == 2 and set(blank.values_list("agent", flat=True)) == {alex.pk}
    assert not blank.exclude(conversation=None).exists()
    assert done.counts["visitors"] == 3
    assert done.counts["conversations"] == 4
    assert done.counts["meetings_anonymised"] == 2
    assert (done.counts["marketo_leads"], done.counts["marketo_activities"]) == (1, 2)
    assert done.counts["known_leads"] == 1
    assert done.counts["outbox_records"] > 0 and done.counts["events"] > 0


def test_a_visitor_who_typed_her_address_keeps_their_own_row(zyanya):
    pat = zyanya["pat"]

    erasure.erase_person(EMAIL)

    kept = Visitor.objects.get(pk=pat.pk)
    assert (kept.email, kept.attributes) == (
        "pat@elsewhere.com",
        {"firstName": "Pat", "email": "pat@elsewhere.com"},
    )
    # The conversation that held her address went.
    assert not Conversation.objects.filter(visitor=pat).exists()
    assert OutboxRecord.objects.filter(lead_key="pat@elsewhere.com").exists()


def test_the_reports_keep_their_counts(zyanya, bo):
    expected = counted_tables()  # what the rollup counts of everything, her events included

    erasure.erase_person(EMAIL)

    assert report_tables() == expected


def test_the_erasure_is_logged_without_the_address(zyanya, acme, maya, settings):
    done = erasure.erase_person(EMAIL, site=acme, requested_by=maya, reference="Ticket 4711")

    stored = Erasure.objects.get()
    assert stored == done
    assert (stored.site, stored.requested_by, stored.reference) == (acme, maya, "Ticket 4711")
    assert stored.requested_by_name == "maya"
    # HMAC-SHA256 of the address keyed by SECRET_KEY: no one without the key can test guesses.
    key = settings.SECRET_KEY.encode()
    assert stored.email_digest == hmac.new(key, EMAIL.encode(), hashlib.sha256).hexdigest()
    assert "zyanya" not in str(Erasure.objects.values().get()).lower()
    assert stored.counts == done.counts and stored.counts["visitors"] == 3


def test_was_erased_finds_the_address_in_any_case_and_after_a_key_rotation(
    zyanya, acme, globex, settings
):
    erasure.erase_person(EMAIL, site=acme)

    assert [e.site for e in erasure.was_erased("ZYANYA@BigCo.com ")] == [acme]
    assert erasure.was_erased("bo@othercorp.com") == []
    # Acme's erasure is Acme's: Globex's admins do not see it.
    assert erasure.was_erased(EMAIL, site=globex) == []
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-after-rotation-" + "x" * 40
    assert len(erasure.was_erased(EMAIL, site=acme)) == 1


def test_a_site_erasure_leaves_another_sites_person_with_the_same_address(
    globex_zyanya, acme, synced_lead
):
    # What Globex holds of her, before anything of Acme's exists.
    globex_traces = traces(EMAIL)
    globex_before = kept_of(globex_zyanya)
    assert globex_before["conversations"] == 1 and globex_before["records"] > 0

    erasure.erase_person(EMAIL, site=acme)

    assert kept_of(globex_zyanya) == globex_before
    # The synced lead is the same person in Marketo: it goes. The learnt lead id stays while
    # Globex's records for her still need it to be sent.
    assert not Lead.objects.exists() and not Activity.objects.exists()
    assert KnownLead.objects.filter(lead_key=EMAIL).exists()
    gone = {("marketo_sync_lead", "email", EMAIL), ("marketo_sync_activity", "attributes", EMAIL)}
    assert traces(EMAIL) == sorted(set(globex_traces) - gone)


def test_a_site_erasure_of_acme_erases_everything_acme_held(zyanya, globex_zyanya, acme):
    globex_before = kept_of(globex_zyanya)

    erasure.erase_person(EMAIL, site=acme)

    assert kept_of(globex_zyanya) == globex_before
    assert not Visitor.objects.filter(site=acme).exclude(email="pat@elsewhere.com").exists()
    assert not OutboxRecord.objects.filter(site=acme, lead_key=EMAIL).exists()
    assert not Meeting.objects.filter(site=acme).exclude(lead_email="").exists()


def test_a_reference_holding_the_address_is_refused_and_nothing_changes(zyanya):
    before = traces(*HER)

    with pytest.raises(erasure.InvalidErasure, match="Leave the address out"):
        erasure.erase_person(EMAIL, reference=f"Request from {EMAIL.upper()}")

    assert traces(*HER) == before
    assert not Erasure.objects.exists()


@pytest.mark.parametrize("email", ["", "zyanya", "zyanya@", "@bigco.com", "a b@bigco.com"])
def test_a_bad_address_is_refused(db, email):
    with pytest.raises(erasure.InvalidErasure, match="valid email"):
        erasure.erase_person(email)
    assert not Erasure.objects.exists()


def test_an_address_nobody_gave_erases_nothing_and_is_still_logged(zyanya, bo):
    before = traces(*HER)

    done = erasure.erase_person("nobody@nowhere.test")

    assert set(done.counts.values()) == {0}
    assert traces(*HER) == before
    assert erasure.describe(done.counts) == "nothing"


def test_the_preview_counts_what_erasing_would_erase_and_changes_nothing(zyanya):
    before = traces(*HER)

    preview = erasure.erasure_preview(EMAIL)

    assert traces(*HER) == before
    assert preview.upcoming_meetings == 1  # the booked one; the cancelled one is no more
    done = erasure.erase_person(EMAIL)
    assert preview.counts == done.counts


# --- the command ------------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("erase_person", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_erases_her_everywhere(zyanya, globex_zyanya):
    printed = run(EMAIL, "--reference", "Ticket 4711", "--yes")

    assert "On every site, this would erase:" in printed
    assert "visitors: 4" in printed  # her three on Acme, one on Globex
    assert "Erased: 4 visitors, 5 conversations" in printed
    assert "(the address itself is not kept)" in printed
    assert traces(*HER) == []
    done = Erasure.objects.get()
    assert (done.site, done.requested_by_name, done.reference) == (
        None,
        "manage.py erase_person",
        "Ticket 4711",
    )


def test_the_command_erases_her_from_one_site(zyanya, globex_zyanya, acme):
    globex_before = kept_of(globex_zyanya)

    printed = run(EMAIL, "--site", str(acme.pk), "--yes")

    assert f"On site {acme.pk} (Acme), this would erase:" in printed
    assert "Erased: 3 visitors, 4 conversations" in printed
    assert kept_of(globex_zyanya) == globex_before
    assert Erasure.objects.get().site == acme


def test_the_command_asks_first_and_a_no_erases_nothing(zyanya, monkeypatch):
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    before = traces(*HER)

    with pytest.raises(CommandError, match="Nothing was erased"):
        run(EMAIL)

    assert asked == ["Erase this person? This cannot be undone. [y/N] "]
    assert traces(*HER) == before
    assert not Erasure.objects.exists()


def test_the_command_without_a_terminal_to_ask_erases_nothing(zyanya, monkeypatch):
    def no_terminal(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)

    with pytest.raises(CommandError, match=r"Nothing was erased \(--yes erases without asking"):
        run(EMAIL)
    assert not Erasure.objects.exists()


def test_the_command_erases_after_a_yes(zyanya, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt: "y")

    assert "Erased: 3 visitors" in run(EMAIL)
    assert traces(*HER) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("not-an-address", "--yes"), "Enter a valid email address"),
        ((EMAIL, "--site", "999999", "--yes"), "There is no site 999999"),
        ((EMAIL, "--reference", f"from {EMAIL}", "--yes"), "Leave the address out"),
    ],
)
def test_the_command_refuses_bad_input_and_erases_nothing(zyanya, args, message):
    before = traces(*HER)

    with pytest.raises(CommandError, match=message):
        run(*args)

    assert traces(*HER) == before
    assert not Erasure.objects.exists()


# --- the privacy page ---------------------------------------------------------------------------


def privacy_url(site) -> str:
    return reverse("reports:privacy", args=[site.pk])


def erase(client, site, **fields):
    data = {"action": "erase", "email": EMAIL, "reference": "Ticket 4711", "confirm": "on"}
    data.update(fields)
    return client.post(privacy_url(site), {k: v for k, v in data.items() if v is not None})


def test_the_admin_erases_her_and_sees_the_counts_and_the_log(client, zyanya, acme, maya):
    client.force_login(maya)

    response = erase(client, acme)

    assert response.status_code == 302 and response["Location"] == privacy_url(acme)
    page = client.get(privacy_url(acme)).content.decode()
    assert "The person was erased from Acme: 3 visitors, 4 conversations" in page
    assert "Ticket 4711" in page and "maya" in page
    assert "zyanya" not in page.lower()
    assert traces(*HER) == []
    assert Erasure.objects.get().requested_by == maya


def test_checking_first_shows_the_counts_and_erases_nothing(client, zyanya, acme, maya):
    client.force_login(maya)
    before = traces(*HER)

    response = client.post(
        privacy_url(acme), {"action": "check", "email": EMAIL, "reference": "Ticket 4711"}
    )

    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.counts == erasure.erasure_preview(EMAIL, site=acme).counts
    page = response.content.decode()
    assert "Erasing this address would erase" in page
    assert "1 booked meeting with this person is still to come" in page
    assert traces(*HER) == before


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"confirm": None}, "confirm", "Tick this box to confirm the erasure."),
        ({"email": "zyanya"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"reference": f"Asked by {EMAIL}"}, "reference", "Leave the address out"),
        ({"reference": "x" * 201}, "reference", "at most 200 characters"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_erases_nothing(
    client, zyanya, acme, maya, fields, field, error
):
    client.force_login(maya)
    before = traces(*HER)

    response = erase(client, acme, **fields)

    assert response.status_code == 400
    assert any(error in e for e in response.context["erase_form"].errors[field])
    assert "Nothing was erased." in response.content.decode()
    assert traces(*HER) == before
    assert not Erasure.objects.exists()


def test_an_unknown_action_is_refused(client, zyanya, acme, maya):
    client.force_login(maya)

    response = client.post(privacy_url(acme), {"action": "delete", "email": EMAIL})

    assert response.status_code == 400
    assert not Erasure.objects.exists()


def test_the_lookup_says_whether_an_address_was_erased(client, zyanya, acme, maya):
    client.force_login(maya)
    erase(client, acme)

    found = client.post(privacy_url(acme), {"action": "lookup", "lookup_email": EMAIL.upper()})
    missing = client.post(privacy_url(acme), {"action": "lookup", "lookup_email": "x@y.test"})

    assert "This address was erased:" in found.content.decode()
    assert "on this site by maya (reference Ticket 4711)" in found.content.decode()
    assert "No erasure of this address is recorded." in missing.content.decode()


def test_the_log_shows_only_this_sites_erasures(client, zyanya, acme, globex, maya, omar):
    erasure.erase_person("someone@globex.test", site=globex, requested_by=omar, reference="G-1")
    client.force_login(maya)
    erase(client, acme)

    page = client.get(privacy_url(acme)).content.decode()

    assert "Ticket 4711" in page and "G-1" not in page


@pytest.mark.parametrize("role", [Membership.Role.MARKETER, Membership.Role.AGENT])
def test_only_the_sites_admins_may_open_it(client, zyanya, acme, role):
    from tests.conftest import _user

    member = _user(f"a-{role}")
    Membership.objects.create(user=member, site=acme, role=role)
    client.force_login(member)
    before = traces(*HER)

    assert client.get(privacy_url(acme)).status_code == 404
    assert erase(client, acme).status_code == 404
    assert traces(*HER) == before


def test_another_sites_admin_gets_a_404(client, zyanya, acme, globex, omar):
    client.force_login(omar)

    assert client.get(privacy_url(acme)).status_code == 404
    assert erase(client, acme).status_code == 404
    assert not Erasure.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, zyanya, acme):
    response = erase(client, acme)

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not Erasure.objects.exists()


def test_an_erasure_needs_the_csrf_token(zyanya, acme, maya):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(maya)

    assert erase(client, acme).status_code == 403
    assert not Erasure.objects.exists()


def test_her_meetings_still_show_in_the_meetings_list_without_her(client, zyanya, acme, maya):
    erasure.erase_person(EMAIL, site=acme)
    client.force_login(maya)

    listed = client.get(reverse("meetings:list", args=[acme.pk])).content.decode()
    booked = Meeting.objects.get(status=Meeting.Status.BOOKED)
    page = client.get(reverse("meetings:detail", args=[acme.pk, booked.pk])).content.decode()

    assert listed.count(">Erased visitor</a>") == 2
    assert "Meeting with an erased visitor" in page and "Erased at their request" in page
    assert "zyanya" not in (listed + page).lower()
