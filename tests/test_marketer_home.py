"""A marketer signs in and sees the sites they work on with their dialogues, and nobody
else's."""

import pytest
from conftest import PASSWORD, make_published_dialogue
from django.contrib.auth import get_user_model

from dialogues import services
from dialogues.models import Dialogue

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def globex_dialogue(globex, omar):
    return make_published_dialogue(globex, name="Globex pricing chat", user=omar)


def sign_in(client, username, password=PASSWORD):
    return client.post("/login/", {"username": username, "password": password})


def test_it_shows_the_sign_in_form(client, db):
    response = client.get("/login/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Sign in</h1>" in page
    assert 'name="username"' in page
    assert 'name="password"' in page
    assert "csrfmiddlewaretoken" in page


def test_it_signs_in_a_demo_style_staff_user_and_takes_them_home(client, db):
    get_user_model().objects.create_user(
        username="demo", password="dynchat-demo", email="demo@example.com", is_staff=True
    )

    response = client.post("/login/", {"username": "demo", "password": "dynchat-demo"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "demo" in home.content.decode()
    assert 'href="/admin/"' in home.content.decode()


def test_it_refuses_a_wrong_password_and_says_so(client, maya):
    response = sign_in(client, "maya", "not her password")

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert client.get("/").status_code == 302


def test_it_sends_anonymous_visitors_to_sign_in_first(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_it_returns_a_marketer_to_the_page_they_asked_for(client, maya):
    response = client.post(
        "/login/", {"username": "maya", "password": PASSWORD, "next": "/?tab=dialogues"}
    )

    assert response["Location"] == "/?tab=dialogues"


def test_it_shows_maya_her_site_and_its_dialogues_and_nothing_of_globex(
    client, acme, acme_dialogue, globex_dialogue
):
    sign_in(client, "maya")

    page = client.get("/").content.decode()

    assert "Acme" in page
    assert acme.public_key in page
    assert "Book a demo" in page
    assert "v1," in page
    assert "Globex" not in page
    assert globex_dialogue.site.public_key not in page


def test_it_shows_omar_his_site_and_nothing_of_acme(client, acme, acme_dialogue, globex_dialogue):
    sign_in(client, "omar")

    page = client.get("/").content.decode()

    assert "Globex pricing chat" in page
    assert "Book a demo" not in page
    assert acme.public_key not in page


def test_it_lists_every_dialogue_of_the_site_with_its_status(client, acme, acme_dialogue):
    Dialogue.objects.create(site=acme, name="Spring campaign draft", flow={})
    retired = make_published_dialogue(acme, name="Winter campaign")
    services.unpublish_dialogue(dialogue_id=retired.pk)
    sign_in(client, "maya")

    page = client.get("/").content.decode()

    assert "Spring campaign draft" in page
    assert "status-draft" in page
    assert "Winter campaign" in page
    assert "status-unpublished" in page
    assert "status-published" in page


def test_it_tells_an_outsider_they_are_not_a_member_of_any_site(
    client, outsider, acme_dialogue, globex_dialogue
):
    sign_in(client, "outsider")

    page = client.get("/").content.decode()

    assert "not a member of any site" in page
    assert "Acme" not in page
    assert "Globex" not in page


def test_it_shows_a_site_shared_by_two_marketers_to_both(client, acme, acme_dialogue, omar):
    services.add_member(site=acme, user=omar, role="marketer")
    sign_in(client, "omar")

    page = client.get("/").content.decode()

    assert "Book a demo" in page


def test_it_builds_the_home_page_in_the_same_number_of_queries_however_many_dialogues(
    client, acme, maya, django_assert_max_num_queries
):
    for number in range(8):
        make_published_dialogue(acme, name=f"Dialogue {number}")
    sign_in(client, "maya")
    # A browser sends its zone from the first page on (static/js/timezone.js); without it, the
    # zone middleware would look for the viewer's own hours once per page.
    client.cookies["tz"] = "Europe/Paris"

    with django_assert_max_num_queries(6):
        response = client.get("/")

    assert response.content.decode().count("Dialogue ") >= 8
