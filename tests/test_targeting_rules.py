"""Targeting rules on their own: URL patterns as Marketo documents them, audience groups with
all/any, schedules, and the validation a marketer meets when a rule is wrong."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dialogues.targeting import (
    ANONYMOUS,
    VisitorFacts,
    compile_targeting,
    normalise_url,
    parse_targeting,
)
from dialogues.trigger import Trigger


def pages(include=(), exclude=()):
    return compile_targeting({"include_urls": list(include), "exclude_urls": list(exclude)})


@pytest.mark.parametrize(
    ("rule", "url", "shown"),
    [
        ("https://www.example.com/pricing", "https://www.example.com/pricing", True),
        ("https://www.example.com/pricing", "https://www.example.com/pricing/", True),
        ("https://www.example.com/pricing", "https://www.example.com/pricing?plan=pro#x", True),
        ("https://www.example.com/pricing", "https://www.example.com/pricing/team", False),
        ("https://www.example.com/pricing", "http://www.example.com/pricing", False),
        ("https://*.example.com/pricing/*", "https://shop.example.com/pricing/team", True),
        ("https://*.example.com/pricing/*", "https://a.b.example.com/pricing/", True),
        ("https://*.example.com/pricing/*", "https://example.org/pricing/team", False),
        # A host wildcard stays inside the host name.
        ("https://*.example.com", "https://evil.test/x.example.com", False),
        ("https://*.example.com", "https://WWW.Example.COM/", True),
        ("www.example.com/blog/*", "http://www.example.com/blog/post-1", True),
        ("www.example.com/blog/*", "https://www.example.com/blog/post-1", True),
        ("https://www.example.com/*/demo", "https://www.example.com/en/demo", True),
        ("https://www.example.com", "https://www.example.com/", True),
        ("https://www.example.com", "https://www.example.com/about", False),
        ("https://www.example.com:8443/*", "https://www.example.com:8443/x", True),
        ("https://www.example.com/a.b", "https://www.example.com/aXb", False),
    ],
)
def test_page_rules_match_as_marketo_documents_them(rule, url, shown):
    assert pages(include=[rule]).admits_page(url) is shown


def test_no_include_rule_means_every_page():
    assert pages().admits_page("https://anything.test/at/all")


def test_an_exclude_rule_wins_over_an_include_rule():
    rules = pages(
        include=["https://www.example.com/*"], exclude=["https://www.example.com/careers/*"]
    )
    assert rules.admits_page("https://www.example.com/pricing")
    assert not rules.admits_page("https://www.example.com/careers/engineer")


def test_url_parameters_are_not_part_of_the_match():
    assert normalise_url("HTTPS://WWW.Example.com/Path?q=1#top") == "https://www.example.com/Path"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("https://www.example.com/pricing?plan=pro", "cannot use URL parameters"),
        ("ftp://files.example.com", "must start with http:// or https://"),
        ("https:///pricing", "needs a host name"),
        ("https://www.exa mple.com", "must not contain spaces"),
    ],
)
def test_a_bad_page_rule_is_refused_with_the_reason(rule, message):
    with pytest.raises(ValidationError) as exc:
        parse_targeting({"include_urls": [rule]})
    assert message in str(exc.value)


def audience(groups, match="all"):
    return compile_targeting({"audience_match": match, "audience": groups})


def known(lead=None, company=None, chat=None):
    return VisitorFacts(lead=lead or {}, company=company or {}, chat=chat or {})


def cond(subject, operator, value=""):
    return {"subject": subject, "operator": operator, "value": value}


def test_person_email_is_empty_targets_anonymous_visitors_only():
    rules = audience([{"conditions": [cond("lead.email", "is_empty")]}])
    assert rules.admits_visitor(ANONYMOUS)
    assert not rules.admits_visitor(known(lead={"email": "ana@bigco.com"}))


def test_a_group_of_all_needs_every_condition_and_a_group_of_any_needs_one():
    conditions = [
        cond("lead.country", "equals", "France"),
        cond("company.size", "greater_than", "50"),
    ]
    every = audience([{"match": "all", "conditions": conditions}])
    either = audience([{"match": "any", "conditions": conditions}])
    french_small = known(lead={"country": "france"}, company={"size": 10})
    french_big = known(lead={"country": "France"}, company={"size": "1,200"})
    assert not every.admits_visitor(french_small)
    assert every.admits_visitor(french_big)
    assert either.admits_visitor(french_small)
    assert not either.admits_visitor(known(lead={"country": "Spain"}, company={"size": 3}))


def test_groups_combine_with_all_or_any():
    groups = [
        {"conditions": [cond("lead.country", "in_list", ["France", "Belgium"])]},
        {"conditions": [cond("chat.freeText", "contains", "pricing")]},
    ]
    belgian = known(lead={"country": "Belgium"})
    asked_pricing = known(chat={"freeText": "Your PRICING please"})
    both = known(lead={"country": "France"}, chat={"freeText": "pricing"})
    assert audience(groups, "all").admits_visitor(both)
    assert not audience(groups, "all").admits_visitor(belgian)
    assert audience(groups, "any").admits_visitor(belgian)
    assert audience(groups, "any").admits_visitor(asked_pricing)


@pytest.mark.parametrize(
    ("operator", "value", "actual", "holds"),
    [
        ("equals", "Gold", "gold ", True),
        ("not_equals", "Gold", "Silver", True),
        ("contains", "tech", "FinTech Ltd", True),
        ("not_contains", "tech", "FinTech Ltd", False),
        ("starts_with", "vp", "VP Sales", True),
        ("is_not_empty", "", "x", True),
        ("is_not_empty", "", None, False),
        ("greater_than", "50", 51, True),
        ("less_than", "50", "fifty", False),
        ("in_list", ["a", " B "], "b", True),
    ],
)
def test_every_operator_reads_as_a_marketer_expects(operator, value, actual, holds):
    rules = audience([{"conditions": [cond("lead.tier", operator, value)]}])
    assert rules.admits_visitor(known(lead={"tier": actual})) is holds


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (cond("lead.country", "equals", ""), "needs a value"),
        (cond("lead.country", "in_list", []), "needs at least one value"),
        (cond("lead.country", "equals", ["a"]), "only 'in list'"),
        (cond("visitor.country", "equals", "x"), "should match pattern"),
        (cond("lead.country", "resembles", "x"), "Input should be"),
    ],
)
def test_a_bad_condition_is_refused_with_the_reason(condition, message):
    with pytest.raises(ValidationError) as exc:
        parse_targeting({"audience": [{"conditions": [condition]}]})
    assert message in str(exc.value)


def test_a_schedule_shows_the_dialogue_only_between_its_start_and_end():
    rules = compile_targeting(
        {"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-24T00:00:00+01:00"}
    )
    assert not rules.in_schedule(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert rules.in_schedule(datetime(2026, 12, 1, tzinfo=UTC))
    assert rules.in_schedule(datetime(2026, 12, 23, 22, 59, tzinfo=UTC))
    assert not rules.in_schedule(datetime(2026, 12, 23, 23, 0, tzinfo=UTC))


def test_a_schedule_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValidationError, match="must come after its start"):
        parse_targeting({"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"})


def test_a_schedule_without_a_time_zone_is_refused():
    with pytest.raises(ValidationError, match="timezone"):
        parse_targeting({"starts_at": "2026-12-02T00:00:00"})


def test_stored_targeting_that_no_longer_validates_shows_the_dialogue_nowhere():
    rules = compile_targeting({"include_urls": ["ftp://nope"]})
    assert not rules.admits_page("https://www.example.com/")


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"type": "time_on_site", "seconds": 30}, True),
        ({"type": "scroll_depth", "percent": 50}, True),
        ({"type": "scroll_depth", "seconds": 5}, False),
        ({"type": "time_on_page", "percent": 5}, False),
        ({"type": "scroll_depth", "percent": 101}, False),
        ({"type": "exit_intent"}, False),
    ],
)
def test_behaviour_triggers_are_validated(data, ok):
    if ok:
        assert Trigger.model_validate(data).type == data["type"]
    else:
        with pytest.raises(ValidationError):
            Trigger.model_validate(data)
