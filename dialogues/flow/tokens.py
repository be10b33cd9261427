"""Personalisation tokens: {{lead.firstName | "there"}} in message text.

Namespaces: `lead` (person attributes, including what the chat captured), `company`, and
`answer` (a question or capture card's stored value, by card id). The fallback after `|` is used
when the value is missing or blank. Rendering produces plain text; whoever displays it escapes
it (the widget only ever sets textContent).
"""

import re

TOKEN = re.compile(
    r"\{\{\s*(?P<ns>[A-Za-z_]+)\.(?P<name>[A-Za-z0-9_-]+)\s*"
    r"(?:\|\s*\"(?P<fallback>[^\"]*)\"\s*)?\}\}"
)
# Anything that opens like a token but does not parse is an authoring mistake worth reporting.
TOKEN_LIKE = re.compile(r"\{\{.*?\}\}")
NAMESPACES = ("lead", "company", "answer")


def token_problems(text: str) -> list[str]:
    problems = []
    for raw in TOKEN_LIKE.findall(text):
        match = TOKEN.fullmatch(raw)
        if not match:
            problems.append(f'token {raw} is not of the form {{{{lead.field | "fallback"}}}}')
        elif match["ns"] not in NAMESPACES:
            problems.append(f"token {raw} names unknown namespace {match['ns']!r}")
    return problems


def render(text: str, *, lead: dict, company: dict, answers: dict) -> str:
    sources = {"lead": lead, "company": company, "answer": answers}

    def substitute(match: re.Match) -> str:
        value = sources.get(match["ns"], {}).get(match["name"])
        if value is None or str(value).strip() == "":
            return match["fallback"] or ""
        return str(value)

    return TOKEN.sub(substitute, text)
