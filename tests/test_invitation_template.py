"""Maya, Acme's marketing admin, writes the email visitors get when they book a meeting: tokens
fill in the visitor, the agent and the meeting, a preview follows her typing, and a mistake in a
token is named and saves nothing. Nobody outside Acme's marketers sees the page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from dialogues import services
from dialogues.models import Membership
from meetings.invitation_text import (
    TOKENS,
    InvitationContext,
    render,
    render_subject,
    sample_context,
    template_problems,
)
from meetings.models import DEFAULT_INVITATION_BODY, DEFAULT_INVITATION_SUBJECT, InvitationTemplate
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role


def booking(**changes) -> InvitationContext:
    values = {
        "person_first_name": "Jamie",
        "person_last_name": "Rivera",
        "person_email": "jamie@bigco.test",
        "company_name": "BigCo",
        "agent_name": "Sam Seller",
        "agent_email": "sam@acme.test",
        # 23 November 2026 is a Monday; 8:00 UTC is 9:00 in Paris (CET, UTC+1).
        "start": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        "end": datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
        "time_zone": "Europe/Paris",
        "join_url": "https://meet.google.test/abc-defg-hij",
        "cancel_url": "https://chat.acme.test/m/1/cancel/t0k3n/",
    }
    return InvitationContext(**{**values, **changes})


# --- The token language (pure, no database) ----------------------------------------------------


def test_every_token_becomes_the_bookings_value_in_the_visitors_zone():
    text = " | ".join(f"{{{{{name}}}}}" for name, _ in TOKENS)

    assert render(text, booking()).split(" | ") == [
        "Jamie",
        "Rivera",
        "jamie@bigco.test",
        "BigCo",
        "Sam Seller",
        "sam@acme.test",
        "Monday, 23 November 2026 at 9:00 AM (Europe/Paris)",
        "Monday, 23 November 2026",
        "30 minutes",
        "https://meet.google.test/abc-defg-hij",
        "https://chat.acme.test/m/1/cancel/t0k3n/",
    ]


def test_a_missing_or_blank_value_uses_the_fallback():
    text = 'Hi {{person.firstName | "there"}}, {{ meeting.link | "no link yet" }}{{company.name}}.'

    assert (
        render(text, booking(person_first_name="  ", join_url="", company_name=""))
        == "Hi there, no link yet."
    )


def test_times_follow_the_visitors_zone_across_a_daylight_saving_change():
    # Paris moves to summer time on 29 March 2026: 9:00 there is 8:00 UTC before, 7:00 after.
    before = booking(
        start=datetime(2026, 3, 28, 8, tzinfo=UTC), end=datetime(2026, 3, 28, 9, tzinfo=UTC)
    )
    after = booking(
        start=datetime(2026, 3, 30, 7, tzinfo=UTC), end=datetime(2026, 3, 30, 8, tzinfo=UTC)
    )

    assert render("{{meeting.time}}", before) == "Saturday, 28 March 2026 at 9:00 AM (Europe/Paris)"
    assert render("{{meeting.time}}", after) == "Monday, 30 March 2026 at 9:00 AM (Europe/Paris)"
    assert render("{{meeting.time}}", booking(time_zone="America/New_York")) == (
        "Monday, 23 November 2026 at 3:00 AM (America/New_York)"
    )


def test_the_date_can_differ_from_the_agents_and_afternoon_reads_pm():
    late = booking(
        start=datetime(2026, 11, 23, 23, 15, tzinfo=UTC),
        end=datetime(2026, 11, 24, 0, 45, tzinfo=UTC),
        time_zone="Asia/Tokyo",
    )

    assert render("{{meeting.date}}, {{meeting.duration}}", late) == (
        "Tuesday, 24 November 2026, 1 hour 30 minutes"
    )
    assert render("{{meeting.time}}", booking(time_zone="Pacific/Honolulu")) == (
        "Sunday, 22 November 2026 at 10:00 PM (Pacific/Honolulu)"
    )


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "1 minute"),
        (45, "45 minutes"),
        (60, "1 hour"),
        (120, "2 hours"),
        (75, "1 hour 15 minutes"),
    ],
)
def test_durations_read_naturally(minutes, text):
    start = datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert render("{{meeting.duration}}", booking(end=start + timedelta(minutes=minutes))) == text


def test_an_unknown_zone_writes_the_time_in_utc_rather_than_failing():
    assert render("{{meeting.time}}", booking(time_zone="Mars/Olympus")) == (
        "Monday, 23 November 2026 at 8:00 AM (UTC)"
    )


def test_rendering_is_plain_text_and_a_subject_stays_on_one_line():
    visitor = booking(person_first_name="<b>Jamie</b>\nBcc: x@evil.test")

    assert render("Hi {{person.firstName}}", visitor) == "Hi <b>Jamie</b>\nBcc: x@evil.test"
    assert render_subject("For {{person.firstName}}", visitor) == (
        "For <b>Jamie</b> Bcc: x@evil.test"
    )


def test_the_default_invitation_has_no_problems_and_reads_well():
    assert template_problems(DEFAULT_INVITATION_SUBJECT + DEFAULT_INVITATION_BODY) == []
    body = render(DEFAULT_INVITATION_BODY, booking(person_first_name="", join_url=""))
    assert body.startswith("Hi there,\n")
    assert "confirmed for Monday, 23 November 2026 at 9:00 AM (Europe/Paris)." in body
    assert "We'll send joining details before the meeting." in body


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "Hi {{person.phone}}",
            "{{person.phone}} is not a token you can use here. Tokens of person: "
            "person.firstName, person.lastName, person.email.",
        ),
        (
            "Hi {{lead.firstName}}",
            "{{lead.firstName}} is not a token you can use here. Namespaces: person, company, "
            "agent, meeting.",
        ),
        (
            "Hi {{ person firstName }}",
            "{{ person firstName }} is not a token: write tokens like "
            '{{person.firstName | "there"}}.',
        ),
        (
            "Hi {{person.firstName | there}}",
            "{{person.firstName | there}} is not a token: write tokens like",
        ),
        (
            "Hi {{person.\nfirstName}}",
            "{{person. firstName}} is not a token: write tokens like",
        ),
        ("Hi {{person.firstName", "A token is opened with {{ but not closed with }}."),
    ],
)
def test_a_bad_token_is_named_in_the_problem(text, problem):
    problems = template_problems(text)

    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_the_sample_booking_is_two_days_ahead_at_nine_in_paris():
    sample = sample_context(datetime(2026, 11, 21, 12, tzinfo=UTC))

    assert render("{{meeting.time}} for {{meeting.duration}}", sample) == (
        "Monday, 23 November 2026 at 9:00 AM (Europe/Paris) for 30 minutes"
    )
    assert sample.start.tzinfo is not None and sample.end > sample.start


# --- The editor page ---------------------------------------------------------------------------


def url(site) -> str:
    return f"/sites/{site.pk}/invitation/"


def person(site, role, name):
    user = get_user_model().objects.create_user(
        username=name, email=f"{name}@acme.test", password=PASSWORD
    )
    services.add_member(site=site, user=user, role=role)
    return user


def stored(site):
    return list(InvitationTemplate.objects.filter(site=site).values_list("subject", "body"))


def test_maya_sees_the_default_text_and_its_preview_before_changing_anything(client, maya, acme):
    client.force_login(maya)

    page = client.get(url(acme)).content.decode()

    assert "visitors get the default text" in page
    assert "Your meeting with {{agent.name}} on {{meeting.date}}" in page
    assert "Your meeting with Alex Morgan on " in page  # the sample booking's agent
    assert "Hi Jamie," in page
    assert "<code>{{person.firstName}}</code>" in page  # the token help
    assert f'href="{url(acme)}" aria-current="page">Invitation email' in page
    assert stored(acme) == []


def test_a_marketing_user_saves_the_invitation_and_the_next_visit_shows_it(client, acme):
    marketer = person(acme, Role.MARKETER, "mo")
    client.force_login(marketer)

    response = client.post(
        url(acme),
        {
            "subject": '  Meeting {{company.name | "you"}} x Acme  ',
            "body": 'Hello {{person.firstName | "there"}},\r\n\r\n  See you {{meeting.time}}.\r\n',
        },
    )

    assert response.status_code == 302
    template = InvitationTemplate.objects.get(site=acme)
    assert template.subject == 'Meeting {{company.name | "you"}} x Acme'
    assert template.body == 'Hello {{person.firstName | "there"}},\n\n  See you {{meeting.time}}.\n'
    assert template.updated_by == marketer
    page = client.get(url(acme)).content.decode()
    assert "Invitation email saved: the next booking gets it." in page
    assert "Last changed" in page and "by mo@acme.test" in page
    assert "Meeting Example Corp x Acme" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"subject": "Hi {{person.phone}}"},
            "{{person.phone}} is not a token you can use here.",
        ),
        (
            {"body": "Hi {{ person firstName }},\nsee you"},
            "{{ person firstName }} is not a token: write tokens like",
        ),
        ({"body": "Hi {{agent.name"}, "A token is opened with {{ but not closed with }}."),
        ({"subject": ""}, "This field is required."),
        ({"body": "   \n  "}, "This field is required."),
        ({"subject": "x" * 201}, "Ensure this value has at most 200 characters (it has 201)."),
        ({"body": "x" * 5001}, "Ensure this value has at most 5000 characters (it has 5001)."),
        ({"subject": "Hello\nBcc: everyone@acme.test"}, "The subject must be one line."),
    ],
)
def test_bad_input_names_the_problem_and_saves_nothing(client, maya, acme, data, message):
    InvitationTemplate.objects.create(site=acme, subject="Ours", body="Our body")
    client.force_login(maya)

    response = client.post(url(acme), {"subject": "Fine", "body": "Fine body", **data})

    assert response.status_code == 400
    page = response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert "Nothing was saved" in page
    assert message in page
    assert stored(acme) == [("Ours", "Our body")]


def test_the_preview_follows_typing_as_escaped_text_and_saves_nothing(client, maya, acme):
    client.force_login(maya)

    response = client.post(
        url(acme),
        {
            "subject": "For {{person.firstName}}",
            "body": "<script>alert(1)</script>\n{{agent.name}} <b>{{meeting.link}}</b> {{x.y}}",
            "preview": "1",
        },
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert 'id="invitation-preview"' in fragment
    assert 'data-preview="subject">For Jamie<' in fragment
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;\nAlex Morgan &lt;b&gt;https://meet.example.com/"
        in fragment
    )
    assert "<script>" not in fragment
    assert "{{x.y}} is not a token you can use here." in fragment
    assert stored(acme) == []


def test_the_preview_button_works_without_javascript(client, maya, acme):
    client.force_login(maya)

    response = client.post(
        url(acme), {"subject": "S {{agent.email}}", "body": "B {{person.email}}", "preview": "1"}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert 'data-preview="subject">S alex.morgan@example.com<' in page
    # A text without the cancel link gets it as a last line, as every invitation does.
    assert (
        'data-preview="body">B jamie.rivera@example.com\n\n'
        "Can&#x27;t make it? Cancel the meeting here: https://dynchat.example.com/m/"
    ) in page
    assert "S {{agent.email}}" in page  # still in the form, to keep editing
    assert stored(acme) == []


def test_reset_puts_the_default_text_in_the_form_and_saving_keeps_it(client, maya, acme):
    InvitationTemplate.objects.create(site=acme, subject="Ours", body="Our body")
    client.force_login(maya)

    response = client.post(url(acme), {"subject": "Ours", "body": "Our body", "reset": "1"})

    page = response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert response.status_code == 200
    assert "The default text is in the form below. Save to use it." in page
    assert DEFAULT_INVITATION_SUBJECT in page
    assert 'Hi {{person.firstName | "there"}},' in page
    assert stored(acme) == [("Ours", "Our body")]

    client.post(url(acme), {"subject": DEFAULT_INVITATION_SUBJECT, "body": DEFAULT_INVITATION_BODY})
    assert stored(acme) == [(DEFAULT_INVITATION_SUBJECT, DEFAULT_INVITATION_BODY)]


def test_agents_outsiders_and_another_sites_admin_get_a_404_and_change_nothing(
    client, maya, omar, outsider, acme, globex
):
    InvitationTemplate.objects.create(site=acme, subject="Acme secret", body="Acme body")
    agent = person(acme, Role.AGENT, "sam")

    for user in (agent, outsider, omar):
        client.force_login(user)
        assert client.get(url(acme)).status_code == 404
        response = client.post(url(acme), {"subject": "Hacked", "body": "Hacked"})
        assert response.status_code == 404
        assert b"Acme secret" not in response.content
    client.logout()
    assert client.get(url(acme)).status_code == 302  # to sign in
    assert stored(acme) == [("Acme secret", "Acme body")]
    # Omar's own site's page is his.
    client.force_login(omar)
    assert client.get(url(globex)).status_code == 200
