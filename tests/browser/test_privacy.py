"""A site admin erases a visitor who asked to be forgotten: checks what it would erase, confirms,
and sees the counts and the erasure in the log, without the address."""

import pytest
from playwright.sync_api import expect

from dialogues import services
from dialogues.models import Membership
from tests.browser.conftest import asks_for_a_call, browses, sign_in_at, visitor_talks
from tests.conftest import _user
from widget.models import Visitor

pytestmark = pytest.mark.browser


def test_a_site_admin_erases_a_person_and_sees_it_logged(
    browser, page, live_server, page_url, demo_site
):
    admin = _user("ada")
    services.add_member(site=demo_site, user=admin, role=Membership.Role.ADMIN)
    visitor_talks(browser, page_url, asks_for_a_call)  # Ann, ann@example.com
    visitor_talks(browser, page_url, browses)

    sign_in_at(page, f"{live_server.url}/sites/{demo_site.pk}/privacy/", admin)

    expect(page.get_by_role("heading", name=f"{demo_site.name}: privacy")).to_be_visible()
    expect(page.get_by_role("table", name="Erasures on this site")).to_contain_text(
        "No one has been erased from this site."
    )
    page.get_by_label("The person's email address").fill("ANN@example.com")
    page.get_by_label("Reference").fill("Ticket 4711")
    page.get_by_role("button", name="Check what would be erased").click()

    preview = page.get_by_role("table", name="Erasing this address would erase")
    expect(preview.get_by_role("row", name="Visitors")).to_contain_text("1")
    expect(preview.get_by_role("row", name="Conversations")).to_contain_text("1")
    # Erasing needs the box ticked: refused, and still there.
    page.get_by_role("button", name="Erase this person").click()
    expect(page.get_by_text("Tick this box to confirm the erasure.")).to_be_visible()
    assert Visitor.objects.filter(email="ann@example.com").exists()

    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase this person").click()

    done = f"The person was erased from {demo_site.name}: 1 visitor, 1 conversation"
    expect(page.get_by_text(done)).to_be_visible()
    log = page.get_by_role("table", name="Erasures on this site")
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log.locator("tbody tr").first).to_contain_text("Ticket 4711")
    expect(log.locator("tbody tr").first).to_contain_text("ada")
    expect(log.locator("tbody tr").first).to_contain_text("1 conversation")
    assert "ann@example.com" not in page.content().lower()
    assert not Visitor.objects.filter(email="ann@example.com").exists()
    assert Visitor.objects.count() == 1  # the visitor who only browsed

    page.get_by_label("Email address", exact=True).fill("ann@example.com")
    page.get_by_role("button", name="Look it up").click()
    expect(page.get_by_role("status")).to_contain_text("This address was erased:")
