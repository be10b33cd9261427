"""A marketing admin connects Marketo and runs the first full sync from the browser."""

import pytest
from playwright.sync_api import expect

from dynchat.demo import DEMO_PASSWORD
from marketo_sync.models import Lead
from tests.marketo_source import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_celery():
    """Run queued tasks inside the request, as the embedded defaults do."""
    from dynchat.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_an_admin_tests_the_connection_and_runs_the_full_sync(
    browser, live_server, demo_site, marketo, marketo_settings, eager_celery
):
    populate(marketo, leads=12)
    page = browser.new_page()
    page.goto(f"{live_server.url}/marketo/settings/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Marketo settings")).to_be_visible()
    expect(page.get_by_label("Product Interest (productInterest, string)")).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to")

    page.get_by_role("link", name="Sync status").click()
    expect(page.get_by_text("No full sync yet.")).to_be_visible()
    page.get_by_role("button", name="Start full sync").click()

    history = page.get_by_role("region", name="Runs")
    expect(history.get_by_text("Succeeded")).to_be_visible()
    expect(page.get_by_role("region", name="In DynChat now")).to_contain_text("Leads12")
    expect(page.get_by_role("button", name="Run incremental sync now")).to_be_visible()
    assert Lead.objects.count() == 12
