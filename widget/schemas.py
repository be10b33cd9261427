"""Request bodies of the widget API. Strict: wrong types are refused, never coerced, and
unknown fields are errors, so a client bug shows up at once."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dialogues.flow import inputs


def _page_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


def _email(value: str) -> str:
    try:
        return inputs.clean_email(value)
    except inputs.InvalidAnswer as exc:
        raise ValueError(exc.message) from None


def _phone(value: str) -> str:
    try:
        return inputs.clean_phone(value)
    except inputs.InvalidAnswer as exc:
        raise ValueError(exc.message) from None


# A key from widget.keys.new_visitor_key: random part, ".", signature.
VisitorKey = Annotated[str, Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
PageUrl = Annotated[str, Field(min_length=8, max_length=2000), AfterValidator(_page_url)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
# Marketo's Munchkin cookie (`_mkto_trk`) as the host page holds it. Only its length is checked
# here: a value that is not a Munchkin cookie is ignored by the service, never refused, as a
# host page's cookie must not break its chat.
MunchkinCookie = Annotated[str, Field(max_length=300)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class SessionIn(Body):
    visitor_id: VisitorKey | None = None
    # keys.visitor_state_token(): completed dialogue ids, a dot, a signature.
    visitor_state: (
        Annotated[str, Field(max_length=2000, pattern=r"^[0-9-]*\.[A-Za-z0-9_-]+$")] | None
    ) = None
    page_url: PageUrl
    mkto_trk: MunchkinCookie | None = None


class ConversationIn(Body):
    visitor_id: VisitorKey
    dialogue_id: Annotated[int, Field(ge=1)]
    page_url: PageUrl
    mkto_trk: MunchkinCookie | None = None


class AnswerIn(Body):
    card_id: Annotated[str, Field(min_length=1, max_length=40)]
    step: Annotated[int, Field(ge=1)]
    # The engine checks the type itself, so a number here gets the card's own clear message.
    value: object = Field(default=None)


class IdentifyIn(Body):
    visitor_id: VisitorKey
    email: Annotated[str, AfterValidator(_email)] | None = None
    firstName: ShortText | None = None
    lastName: ShortText | None = None
    phone: Annotated[str, AfterValidator(_phone)] | None = None
    company: ShortText | None = None
    mkto_trk: MunchkinCookie | None = None


def _aware_datetime(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time, e.g. 2026-11-23T09:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must say its offset from UTC, e.g. 2026-11-23T09:00:00Z")
    return moment


CardId = Annotated[str, Field(min_length=1, max_length=40)]
# Checked against the zone database by the service (calendars.display.zone_named).
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64)]


class SlotsQuery(BaseModel):
    # From the query string, where everything is text: numbers are read, not refused.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    card_id: CardId
    step: Annotated[int, Field(ge=1)]
    time_zone: TimeZoneName


class BookingIn(Body):
    card_id: CardId
    step: Annotated[int, Field(ge=1)]
    start: Annotated[str, Field(max_length=40), AfterValidator(_aware_datetime)]
    time_zone: TimeZoneName
