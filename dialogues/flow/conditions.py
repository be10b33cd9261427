"""Branch conditions over answers and visitor attributes. Comparisons ignore case and
surrounding spaces, as marketers expect from Marketo's smart lists."""

from dialogues.flow.cards import BranchRule, Condition


def _subject_value(subject: str, *, lead: dict, company: dict, answers: dict) -> str:
    namespace, _, name = subject.partition(".")
    source = {"lead": lead, "company": company, "answer": answers}[namespace]
    value = source.get(name)
    return "" if value is None else str(value).strip()


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def condition_holds(condition: Condition, *, lead: dict, company: dict, answers: dict) -> bool:
    actual = _subject_value(condition.subject, lead=lead, company=company, answers=answers)
    return compare(condition.operator, actual, condition.value)


def compare(operator: str, actual: object, expected: str | list[str]) -> bool:
    """Whether `actual` (any stored value; None is empty) stands in `operator` to `expected`.

    Shared by branch rules and dialogue targeting, so both read conditions the same way."""
    actual = "" if actual is None else str(actual).strip()
    folded = actual.casefold()
    op = operator
    if op == "is_empty":
        return actual == ""
    if op == "is_not_empty":
        return actual != ""
    if op == "in_list":
        return folded in {item.strip().casefold() for item in expected}
    expected = str(expected).strip().casefold()
    if op == "equals":
        return folded == expected
    if op == "not_equals":
        return folded != expected
    if op == "contains":
        return expected in folded
    if op == "not_contains":
        return expected not in folded
    if op == "starts_with":
        return folded.startswith(expected)
    # greater_than / less_than compare numbers; a non-number never matches.
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False
    return left > right if op == "greater_than" else left < right


def rule_matches(rule: BranchRule, *, lead: dict, company: dict, answers: dict) -> bool:
    results = (
        condition_holds(c, lead=lead, company=company, answers=answers) for c in rule.conditions
    )
    return all(results) if rule.match == "all" else any(results)
