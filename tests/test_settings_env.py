"""Settings come from the environment through helpers that fall back to a default when a
variable is unset or empty and stop start-up, naming the variable, when it is set wrong.
The demo seed can be run any number of times."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from dynchat import demo
from dynchat.env import env_bool, env_int, env_list, env_str, env_url
from routing.models import QueueMember, RoutingRule

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NAME = "DYNCHAT_TEST_SETTING"


@pytest.fixture
def env(monkeypatch):
    """Set (or, with None, unset) the variable under test."""

    def set_to(value):
        if value is None:
            monkeypatch.delenv(NAME, raising=False)
        else:
            monkeypatch.setenv(NAME, value)

    return set_to


# --- env_str ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_it_falls_back_to_the_default_text_when_unset_or_empty(env, value):
    env(value)

    assert env_str(NAME, "fallback") == "fallback"
    assert env_str(NAME) == ""


def test_it_reads_text_as_it_is_set(env):
    env("DynChat <hello@acme.test>")

    assert env_str(NAME, "fallback") == "DynChat <hello@acme.test>"


# --- env_bool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
@pytest.mark.parametrize("default", [True, False])
def test_it_falls_back_to_the_default_switch_when_unset_or_empty(env, value, default):
    env(value)

    assert env_bool(NAME, default) is default


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("True", True),
        (" YES ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        (" off", False),
    ],
)
def test_it_reads_a_switch_in_any_usual_spelling(env, value, expected):
    env(value)

    assert env_bool(NAME, not expected) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "y", "t"])
def test_it_refuses_a_switch_it_cannot_read_naming_the_variable(env, value):
    env(value)

    with pytest.raises(ImproperlyConfigured) as caught:
        env_bool(NAME, False)

    assert NAME in str(caught.value)
    assert repr(value.strip().lower()) in str(caught.value)


# --- env_int ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "  "])
def test_it_falls_back_to_the_default_number_when_unset_or_empty(env, value):
    env(value)

    assert env_int(NAME, 120, minimum=1) == 120


@pytest.mark.parametrize(("value", "expected"), [("42", 42), (" 7 ", 7), ("-3", -3), ("0", 0)])
def test_it_reads_a_whole_number(env, value, expected):
    env(value)

    assert env_int(NAME, 120) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "10k", "1e3", "0x10"])
def test_it_refuses_a_number_it_cannot_read_naming_the_variable(env, value):
    env(value)

    with pytest.raises(ImproperlyConfigured) as caught:
        env_int(NAME, 120)

    assert str(caught.value) == f"{NAME} must be a whole number, got {value!r}"


def test_it_refuses_a_number_below_the_minimum_naming_the_variable(env):
    env("0")

    with pytest.raises(ImproperlyConfigured) as caught:
        env_int(NAME, 120, minimum=1)

    assert str(caught.value) == f"{NAME} must be at least 1, got 0"


def test_it_accepts_a_number_equal_to_the_minimum(env):
    env("1024")

    assert env_int(NAME, 16384, minimum=1024) == 1024


# --- env_list ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   "])
def test_it_falls_back_to_the_default_list_when_unset_or_empty(env, value):
    env(value)

    assert env_list(NAME, ["localhost"]) == ["localhost"]
    assert env_list(NAME) == []


def test_it_hands_out_a_copy_of_the_default_list(env):
    env(None)
    default = ["localhost"]

    env_list(NAME, default).append("evil.test")

    assert default == ["localhost"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme.test", ["acme.test"]),
        ("acme.test,globex.test", ["acme.test", "globex.test"]),
        (" acme.test , , globex.test ,", ["acme.test", "globex.test"]),
        (",,", []),
    ],
)
def test_it_reads_a_comma_separated_list_dropping_blanks(env, value, expected):
    env(value)

    assert env_list(NAME, ["default"]) == expected


# --- env_url ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_it_falls_back_to_the_default_address_when_unset_or_empty(env, value):
    env(value)

    assert env_url(NAME, "http://127.0.0.1:8000", schemes=("http", "https")) == (
        "http://127.0.0.1:8000"
    )
    assert env_url(NAME, schemes=("redis",)) == ""


@pytest.mark.parametrize(
    "value", ["https://chat.acme.test", " http://localhost:8000 ", "rediss://cache:6380/0"]
)
def test_it_reads_an_address_with_an_allowed_scheme(env, value):
    env(value)

    assert env_url(NAME, schemes=("http", "https", "rediss")) == value.strip()


@pytest.mark.parametrize(
    "value", ["chat.acme.test", "ftp://chat.acme.test", "https:/chat.acme.test", "mysql://db/x"]
)
def test_it_refuses_an_address_with_another_scheme_naming_the_variable(env, value):
    env(value)

    with pytest.raises(ImproperlyConfigured) as caught:
        env_url(NAME, schemes=("http", "https"))

    assert str(caught.value) == f"{NAME} must start with one of ('http', 'https'), got {value!r}"


def test_it_refuses_a_default_address_with_another_scheme(env):
    env(None)

    with pytest.raises(ImproperlyConfigured) as caught:
        env_url(NAME, "ftp://nowhere", schemes=("http",))

    assert NAME in str(caught.value)


# --- the demo seed ----------------------------------------------------------------------------


def test_it_seeds_the_demo_once_however_often_it_runs(client, db, capsys):

    call_command("seed_demo")
    call_command("seed_demo")

    site = Site.objects.get(name=demo.DEMO_SITE_NAME)
    assert Site.objects.count() == 1
    assert Dialogue.objects.filter(site=site).count() == 1
    dialogue = Dialogue.objects.get(site=site)
    assert dialogue.status == Dialogue.Status.PUBLISHED
    assert DialogueVersion.objects.filter(dialogue=dialogue).count() == 1
    assert dialogue.current_version.number == 1
    assert get_user_model().objects.filter(username=demo.DEMO_USERNAME).count() == 1
    assert Membership.objects.filter(site=site, role=Membership.Role.ADMIN).count() == 1
    agents = Membership.objects.filter(site=site, role=Membership.Role.AGENT)
    assert sorted(agents.values_list("user__username", flat=True)) == ["priya", "sam"]
    # Both agents take turns in the queue, and one custom rule sends UK visitors to Priya.
    queue = QueueMember.objects.filter(site=site).order_by("position")
    assert [m.user.username for m in queue] == ["sam", "priya"]
    (rule,) = RoutingRule.objects.filter(site=site)
    assert rule.name == demo.DEMO_RULE_NAME
    assert [agent.username for agent in rule.agents.all()] == ["priya"]
    assert client.login(username=demo.DEMO_USERNAME, password=demo.DEMO_PASSWORD)
    printed = capsys.readouterr().out
    assert printed.count("DynChat demo is ready.") == 2
    assert f"Site key:     {site.public_key}" in printed


def test_it_reseeds_a_demo_whose_flow_or_password_was_changed(client, db):
    demo.seed_demo()
    dialogue = Dialogue.objects.get(name=demo.DEMO_DIALOGUE_NAME)
    dialogue.flow = {"start": "x", "cards": [{"id": "x", "type": "end", "text": "Edited"}]}
    dialogue.save(update_fields=["flow"])
    user = get_user_model().objects.get(username=demo.DEMO_USERNAME)
    user.set_password("something else")
    user.save()

    demo.seed_demo()

    dialogue.refresh_from_db()
    assert dialogue.flow == demo.DEMO_FLOW
    assert dialogue.current_version.number == 2
    assert dialogue.current_version.flow["start"] == "welcome"
    assert client.login(username=demo.DEMO_USERNAME, password=demo.DEMO_PASSWORD)


def test_it_allows_the_demo_page_origins_on_the_demo_site(db, settings):
    settings.SITE_ROOT = "http://127.0.0.1:8765"

    site = demo.seed_demo()

    assert site.allowed_origins == ["http://127.0.0.1:8765", "http://localhost:8765"]
