"""The admin is how dialogues are made until the builder arrives: it must refuse what would
break the widget, with a message saying what is wrong, and store nothing."""

import json

import pytest

from dialogues.admin import DialogueForm, SiteForm
from dialogues.models import Dialogue, Site
from tests.conftest import EVERY_CARD_FLOW


def site_form(**overrides):
    data = {
        "name": "Initech",
        "allowed_origins": '["https://initech.test"]',
        "chat_enabled": "on",
        "theme": "{}",
        **overrides,
    }
    return SiteForm(data=data)


def test_it_saves_a_site_with_the_default_theme_filled_in(db):
    form = site_form()

    assert form.is_valid(), form.errors
    site = form.save()

    assert site.allowed_origins == ["https://initech.test"]
    assert site.theme["response_delay_ms"] == 600
    assert len(site.public_key) >= 16


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        ('["initech.test"]', "must look like https://www.example.com"),
        ('["https://initech.test/pricing"]', "must be an origin only"),
        ('["ftp://initech.test"]', "must look like https://www.example.com"),
        ('"https://initech.test"', "A JSON list"),
        ("[42]", "is not text"),
    ],
)
def test_it_refuses_allowed_origins_that_are_not_origins(db, origins, message):
    form = site_form(allowed_origins=origins)

    assert not form.is_valid()
    assert message in " ".join(form.errors["allowed_origins"])
    assert not Site.objects.exists()


@pytest.mark.parametrize(
    ("theme", "field"),
    [
        ('{"primary_color": "red"}', "primary_color"),
        ('{"response_delay_ms": 99999}', "response_delay_ms"),
        ('{"position": "top"}', "position"),
        ('{"font_family": "x; background: url(evil)"}', "font_family"),
        ('{"unknown": 1}', "unknown"),
    ],
)
def test_it_refuses_a_theme_the_widget_could_not_use(db, theme, field):
    form = site_form(theme=theme)

    assert not form.is_valid()
    assert field in " ".join(form.errors["theme"])


def test_it_refuses_a_dialogue_whose_flow_is_invalid_naming_the_card(acme):
    flow = {"start": "a", "cards": [{"id": "a", "type": "message", "text": "", "next": None}]}
    form = DialogueForm(
        data={
            "site": acme.pk,
            "name": "Broken",
            "priority": 0,
            "trigger": '{"type": "time_on_page", "seconds": 0}',
            "flow": json.dumps(flow),
        }
    )

    assert not form.is_valid()
    assert "cards.0.text" in " ".join(form.errors["flow"])
    assert not Dialogue.objects.exists()


@pytest.mark.parametrize(
    "trigger", ['{"type": "exit_intent"}', '{"seconds": -1}', '{"seconds": "5"}', "[]"]
)
def test_it_refuses_a_trigger_it_cannot_run(acme, trigger):
    form = DialogueForm(
        data={
            "site": acme.pk,
            "name": "Demo",
            "priority": 0,
            "trigger": trigger,
            "flow": json.dumps(EVERY_CARD_FLOW),
        }
    )

    assert not form.is_valid()
    assert "trigger" in form.errors
