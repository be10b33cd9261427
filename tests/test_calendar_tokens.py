"""OAuth tokens are encrypted at rest, and the key can be rotated without losing any."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from calendars import crypto
from calendars.models import CalendarConnection
from calendars.services import save_connection
from tests.conftest import make_agent

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def raw_refresh_token(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token FROM calendars_calendarconnection WHERE user_id = %s", [user.pk]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def connected(maya, settings):
    settings.CALENDAR_TOKEN_KEYS = [OLD]
    save_connection(maya, "google", account_email="maya@example.com", refresh_token="1//refresh")
    return maya


def test_the_refresh_token_is_stored_encrypted_and_read_back_plain(connected):
    stored = raw_refresh_token(connected)

    assert "1//refresh" not in stored
    assert Fernet(OLD.encode()).decrypt(stored.encode()) == b"1//refresh"
    assert CalendarConnection.objects.get(user=connected).refresh_token == "1//refresh"


def test_a_new_key_in_front_still_reads_tokens_written_with_the_old_one(connected, settings):
    settings.CALENDAR_TOKEN_KEYS = [NEW, OLD]

    assert CalendarConnection.objects.get(user=connected).refresh_token == "1//refresh"


def test_rotation_re_encrypts_every_token_so_the_old_key_can_go(connected, settings, capsys):
    settings.CALENDAR_TOKEN_KEYS = [NEW, OLD]

    call_command("rotate_calendar_keys")

    assert "Re-encrypted 1 rows" in capsys.readouterr().out
    settings.CALENDAR_TOKEN_KEYS = [NEW]
    assert CalendarConnection.objects.get(user=connected).refresh_token == "1//refresh"
    assert Fernet(NEW.encode()).decrypt(raw_refresh_token(connected).encode()) == b"1//refresh"


def test_rotation_stops_without_changing_anything_when_a_key_is_missing(connected, settings):
    before = raw_refresh_token(connected)
    settings.CALENDAR_TOKEN_KEYS = [NEW]  # the old key dropped too early

    with pytest.raises(CommandError, match="Keep the old key"):
        call_command("rotate_calendar_keys")

    assert raw_refresh_token(connected) == before
    with pytest.raises(crypto.UnreadableSecret):
        CalendarConnection.objects.get(user=connected)


def test_a_deployment_without_its_own_token_key_is_warned(settings):
    from django.core.checks import run_checks

    settings.CALENDAR_TOKEN_KEYS = []
    ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "dynchat.W002" in ids

    settings.CALENDAR_TOKEN_KEYS = [NEW]
    ids = {message.id for message in run_checks(include_deployment_checks=True)}
    assert "dynchat.W002" not in ids


def test_a_token_key_that_is_not_a_fernet_key_is_an_error(settings):
    from django.core.checks import run_checks

    settings.CALENDAR_TOKEN_KEYS = [NEW, "not-a-key"]

    (error,) = [m for m in run_checks() if m.id == "dynchat.E001"]
    assert "entry 2" in error.msg


def test_the_team_page_shows_calendars_without_decrypting_their_tokens(
    client, acme, maya, settings
):
    from dialogues.models import Membership

    Membership.objects.filter(user=maya, site=acme).update(role="admin")
    settings.CALENDAR_TOKEN_KEYS = [OLD]
    agent = make_agent(acme, "gus")
    save_connection(agent, "google", account_email="gus@acme.test", refresh_token="1//gus")
    settings.CALENDAR_TOKEN_KEYS = [NEW]  # the token could not be read now
    client.force_login(maya)

    response = client.get(f"/sites/{acme.pk}/members/")

    assert response.status_code == 200
    assert "Google Calendar" in response.content.decode()
