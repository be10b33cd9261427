"""The Marketo pages: who may open them, the sync status, the settings and Test connection."""

import re

import pytest
from django.urls import reverse

from dialogues import services as dialogue_services
from dialogues.models import Membership
from marketo_sync import services
from marketo_sync.models import SyncRun, SyncSettings
from tests.conftest import PASSWORD, _user
from tests.marketo_source import populate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PAGES = ["marketo_sync:status", "marketo_sync:settings"]


@pytest.fixture
def admin_client(client, maya, acme):
    """Maya is Acme's marketing admin."""
    client.login(username="maya", password=PASSWORD)
    return client


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("role", [Membership.Role.MARKETER, Membership.Role.AGENT])
def test_marketing_users_and_agents_are_refused(client, acme, page, role):
    user = _user(f"someone-{role}")
    dialogue_services.add_member(site=acme, user=user, role=role)
    client.login(username=user.username, password=PASSWORD)
    assert client.get(reverse(page)).status_code == 403
    assert client.post(reverse("marketo_sync:start"), {"kind": "full"}).status_code == 403
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("page", PAGES)
def test_people_without_a_site_are_refused_and_strangers_sent_to_sign_in(client, outsider, page):
    assert client.get(reverse(page)).url.startswith(reverse("login"))
    client.login(username="outsider", password=PASSWORD)
    assert client.get(reverse(page)).status_code == 403


def test_the_nav_shows_marketo_only_to_admins(client, admin_client, acme):
    assert 'href="/marketo/"' in admin_client.get(reverse("dialogues:home")).content.decode()
    agent = _user("sam")
    dialogue_services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    client.login(username="sam", password=PASSWORD)
    assert 'href="/marketo/"' not in client.get(reverse("dialogues:home")).content.decode()


def test_the_status_page_says_when_marketo_is_not_configured(admin_client, settings):
    settings.MARKETO_BASE_URL = ""
    page = admin_client.get(reverse("marketo_sync:status")).content.decode()
    assert "Marketo is not connected" in page
    assert "MARKETO_CLIENT_ID" in page


def test_the_status_page_shows_runs_counts_and_errors(admin_client, marketo, marketo_client):
    populate(marketo, leads=10)
    services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    marketo.set_credentials("someone-else", "x")
    marketo_client.tokens.discard(marketo_client.access_token())
    services.run_sync(kind=SyncRun.Kind.INCREMENTAL, client=marketo_client)
    page = admin_client.get(reverse("marketo_sync:status")).content.decode()
    assert "<dt>Leads</dt><dd>10</dd>" in page
    assert "Succeeded" in page
    assert "Failed" in page
    assert "Marketo refused the client id and secret" in page
    assert "Run incremental sync now" in page


@pytest.fixture
def sync_lock_held_elsewhere():
    """A worker elsewhere holding the sync lock, as while it runs a sync."""
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    keys = ("dbname", "user", "host", "port", "password")
    with psycopg.connect(**{k: v for k, v in params.items() if k in keys}) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [services.LOCK_KEY])
        yield


def test_a_running_sync_is_polled_with_its_progress(admin_client, sync_lock_held_elsewhere):
    run = SyncRun.objects.create(
        kind="full",
        started_at="2026-11-20T10:00:00Z",
        phase="Exporting leads and activities",
        windows_total=10,
        windows_done=4,
        counts={"leads": 1200},
        bytes_downloaded=5_000_000,
    )
    fragment = admin_client.get(reverse("marketo_sync:status"), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert "<h1>" not in html  # the fragment, not the page
    assert "Exporting leads and activities" in html
    assert 'value="4" max="10"' in html
    assert "1200" in html
    run.status = SyncRun.Status.SUCCEEDED
    run.save()
    html = admin_client.get(reverse("marketo_sync:status"), HTTP_HX_REQUEST="true").content
    assert b"hx-trigger" not in html  # polling stops with the run


def test_starting_a_sync_queues_it(
    admin_client, marketo, marketo_settings, monkeypatch, django_capture_on_commit_callbacks
):
    from marketo_sync import tasks

    queued = []
    monkeypatch.setattr(tasks.full_sync, "delay", lambda **kw: queued.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("marketo_sync:start"), {"kind": "full"})
    assert response.status_code == 302
    assert queued == [{"started_by": "maya", "fresh": False}]


def test_a_bad_sync_kind_is_refused(admin_client, marketo_settings):
    response = admin_client.post(reverse("marketo_sync:start"), {"kind": "everything"}, follow=True)
    assert "Choose a full or an incremental sync." in response.content.decode()


def test_test_connection_names_the_problem(admin_client, marketo, marketo_settings):
    ok = admin_client.post(reverse("marketo_sync:test_connection")).content.decode()
    assert "Connected to" in ok
    marketo.set_credentials("other", "other")
    from django.core.cache import cache

    cache.clear()
    failed = admin_client.post(reverse("marketo_sync:test_connection")).content.decode()
    assert "Connection failed" in failed
    assert "LaunchPoint" in failed


def test_the_settings_page_offers_marketos_fields(admin_client, marketo, marketo_settings):
    page = admin_client.get(reverse("marketo_sync:settings")).content.decode()
    assert 'value="productInterest"' in page  # a custom field, read from describe
    assert 'value="industry"' in page
    assert 'value="externalCompanyId"' not in page  # always synced, not offered


def test_saving_fields_keeps_them(admin_client, marketo, marketo_settings):
    response = admin_client.post(
        reverse("marketo_sync:settings"),
        {"person_fields": ["firstName", "productInterest"], "company_fields": ["industry"]},
    )
    assert response.status_code == 302
    saved = SyncSettings.load()
    assert saved.person_fields == ["firstName", "productInterest"]
    assert saved.company_fields == ["industry"]


def test_more_than_50_fields_are_refused_and_nothing_is_saved(
    admin_client, marketo, marketo_settings
):
    many = [
        {"name": f"custom{i}", "displayName": f"Custom {i}", "dataType": "string"}
        for i in range(60)
    ]
    from django.core.cache import cache

    from marketo_sync.views import DESCRIBE_CACHE_KEY

    cache.set(DESCRIBE_CACHE_KEY, (many, []), 600)
    before = SyncSettings.load().person_fields
    response = admin_client.post(
        reverse("marketo_sync:settings"), {"person_fields": [f["name"] for f in many[:51]]}
    )
    assert response.status_code == 200
    assert "Pick at most 50 person and company fields together; you picked 51." in (
        response.content.decode()
    )
    assert SyncSettings.load().person_fields == before


def test_the_settings_page_still_works_when_marketo_is_down(
    admin_client, marketo, marketo_settings
):
    marketo.set_credentials("other", "other")
    page = admin_client.get(reverse("marketo_sync:settings")).content.decode()
    assert "could not be read" in page
    # The fields already picked are still offered, ticked, so saving loses none of them.
    assert re.search(r'value="firstName"[^>]*checked', page)


def test_a_run_whose_worker_died_is_shown_as_interrupted(admin_client):
    dead = SyncRun.objects.create(kind="full", started_at="2026-11-20T10:00:00Z")
    html = admin_client.get(reverse("marketo_sync:status")).content.decode()
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.INTERRUPTED
    assert "Interrupted" in html
    assert "Start full sync" in html or "Resume full sync" in html
