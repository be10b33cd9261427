"""The public widget API, /api/widget/v1/. Described in widget/openapi.json."""

import json
from datetime import UTC
from pathlib import Path

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from calendars.display import day_label, time_label, zone_named
from dialogues.flow import engine
from dialogues.flow.inputs import InvalidAnswer
from dialogues.models import Site
from dialogues.selectors import site_for_key
from dialogues.theme import Theme
from meetings import services as meetings
from widget import services
from widget.decorators import error, parse_query, widget_api
from widget.schemas import AnswerIn, BookingIn, ConversationIn, IdentifyIn, SessionIn, SlotsQuery

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def prompt_json(prompt: engine.Prompt | None) -> dict | None:
    if prompt is None:
        return None
    data = {"card_id": prompt.card_id, "step": prompt.step, "kind": prompt.kind}
    if prompt.kind == "choice":
        data["choices"] = [{"label": c.label, "value": c.value} for c in prompt.choices]
    elif prompt.kind == "booking":
        data["skip_label"] = prompt.skip_label
    else:
        data["placeholder"] = prompt.placeholder
    return data


def _step_json(step: services.Step) -> dict:
    outcome = step.outcome
    events = []
    for event in step.events:
        # What the host page's DynChat.on() callbacks get: never the captured values themselves.
        public = {"kind": str(event.kind)}
        if event.kind == "field_captured":
            public["input_type"] = event.data["input_type"]
        elif event.kind == "goal_reached":
            public["goal"] = event.data["goal"]
        elif event.kind == "meeting_booked":
            public["start"] = event.data["start"]
        events.append(public)
    data = {
        "conversation_id": str(step.conversation.pk),
        "messages": [{"card_id": m.card_id, "text": m.text} for m in outcome.messages],
        "prompt": prompt_json(outcome.prompt),
        "done": outcome.state.done,
        "events": events,
    }
    if step.visitor_state is not None:
        data["visitor_state"] = step.visitor_state
    return data


def bearer_token(request) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _unknown_visitor() -> JsonResponse:
    return error(
        "unknown_visitor", "Start a session first; this visitor is unknown.", 404, "visitor_id"
    )


def _denied(exc: services.ConversationDenied) -> JsonResponse:
    return error(exc.code, exc.message, exc.status)


def theme_json(request, site) -> dict:
    """The site's theme as the widget applies it, with its avatar's address (versioned, so a
    new avatar is fetched at once) and its privacy link."""
    avatar_url = None
    if site.avatar_version:
        path = reverse("widget:avatar", args=[site.public_key])
        avatar_url = request.build_absolute_uri(f"{path}?v={site.avatar_version}")
    return {
        **Theme.model_validate(site.theme).model_dump(),
        "avatar_url": avatar_url,
        "privacy_url": site.privacy_url or None,
    }


@widget_api(methods=("POST",), body=SessionIn, scope="session")
def sessions(request, site, data: SessionIn):
    session = services.start_visitor_session(
        site=site,
        visitor_key=data.visitor_id,
        visitor_state=data.visitor_state,
        page_url=data.page_url,
        marketo_cookie=data.mkto_trk,
    )
    offer = session.offer
    return JsonResponse(
        {
            "visitor_id": session.visitor_key,
            "visitor_state": session.visitor_state,
            "chat_enabled": site.chat_enabled,
            "theme": theme_json(request, site),
            "dialogue": None
            if offer is None
            else {
                "id": offer.dialogue_id,
                "name": offer.name,
                "version": offer.version,
                "trigger": offer.trigger,
            },
        }
    )


@widget_api(methods=("POST",), body=ConversationIn)
def conversations(request, site, data: ConversationIn):
    try:
        step, token = services.start_conversation(
            site=site,
            visitor_key=data.visitor_id,
            dialogue_id=data.dialogue_id,
            page_url=data.page_url,
            marketo_cookie=data.mkto_trk,
        )
    except services.UnknownVisitor:
        return _unknown_visitor()
    except services.DialogueUnavailable:
        return error(
            "dialogue_not_available",
            "This dialogue is not published on this site.",
            404,
            "dialogue_id",
        )
    return JsonResponse({**_step_json(step), "token": token}, status=201)


@widget_api(methods=("POST",), body=AnswerIn)
def answers(request, site, conversation_id: str, data: AnswerIn):
    try:
        step = services.answer_conversation(
            site=site,
            conversation_id=conversation_id,
            token=bearer_token(request),
            card_id=data.card_id,
            step=data.step,
            value=data.value,
        )
    except InvalidAnswer as exc:
        return error(exc.code, exc.message, 422, exc.field)
    except REFUSALS as exc:
        return _refused(exc)
    return JsonResponse({**_step_json(step), "answer": {"text": step.outcome.answer_text}})


@widget_api(methods=("GET",))
def conversation_detail(request, site, conversation_id: str):
    try:
        conversation = services.authorised_conversation(
            site=site, conversation_id=conversation_id, token=bearer_token(request)
        )
    except services.ConversationDenied as exc:
        return _denied(exc)
    flow = services.version_flow(conversation.version)
    state = engine.State.from_dict(conversation.state)
    return JsonResponse(
        {
            "conversation_id": str(conversation.pk),
            "dialogue_id": conversation.dialogue_id,
            "version": conversation.version.number,
            "transcript": [
                {"author": e.author, "card_id": e.card_id, "text": e.text}
                for e in services.transcript(conversation)
            ],
            "prompt": prompt_json(engine.current_prompt(flow, state)),
            "done": state.done,
        }
    )


# What a conversation endpoint refuses the same way whichever it is (answers, slots, bookings).
REFUSALS = (
    services.ConversationDenied,
    engine.ConversationOver,
    engine.NotCurrentCard,
    meetings.InvalidTimeZone,
)


def _refused(exc: Exception) -> JsonResponse:
    """The error answer for one of REFUSALS."""
    if isinstance(exc, services.ConversationDenied):
        return _denied(exc)
    if isinstance(exc, engine.ConversationOver):
        return error("conversation_over", "This conversation has ended.", 409)
    if isinstance(exc, engine.NotCurrentCard):
        return error(
            "not_current_card",
            "This answer is not for the question being asked (already answered, or out of date).",
            409,
            "card_id",
        )
    return error(
        "invalid_field", "time_zone: not a time zone name such as Europe/Paris.", 400, "time_zone"
    )


def offered_days_json(offer: meetings.OfferedDays) -> dict:
    zone = zone_named(offer.time_zone)
    return {
        "time_zone": offer.time_zone,
        "meeting_minutes": offer.meeting_minutes,
        "days": [
            {
                "date": day.isoformat(),
                "label": day_label(day),
                "slots": [
                    {"start": _iso(start), "label": time_label(start, zone)} for start in starts
                ],
            }
            for day, starts in offer.days
        ],
        # With no days: what to tell the visitor (the site's routing fallback message).
        "fallback": offer.fallback,
    }


def _iso(moment) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@widget_api(methods=("GET",))
def slots(request, site, conversation_id: str):
    query = parse_query(request, SlotsQuery)
    if isinstance(query, JsonResponse):
        return query
    try:
        conversation = services.authorised_conversation(
            site=site, conversation_id=conversation_id, token=bearer_token(request)
        )
        card = meetings.booking_card(conversation, card_id=query.card_id, step=query.step)
        offer = meetings.offered_days(
            site=site,
            facts=meetings.conversation_facts(conversation),
            card=card,
            time_zone=query.time_zone,
        )
        if offer.fallback is not None:
            meetings.record_fallback(
                site=site,
                conversation_id=conversation_id,
                token=bearer_token(request),
                card_id=query.card_id,
                step=query.step,
                message=offer.fallback,
            )
    except REFUSALS as exc:
        return _refused(exc)
    response = JsonResponse(offered_days_json(offer))
    response["Cache-Control"] = "no-store"
    return response


@widget_api(methods=("POST",), body=BookingIn)
def bookings(request, site, conversation_id: str, data: BookingIn):
    try:
        booked = meetings.book_meeting(
            site=site,
            conversation_id=conversation_id,
            token=bearer_token(request),
            card_id=data.card_id,
            step=data.step,
            start=data.start,
            time_zone=data.time_zone,
        )
    except REFUSALS as exc:
        return _refused(exc)
    except meetings.EmailRequired:
        return error("email_required", "We need your email address before booking a meeting.", 422)
    except meetings.SlotTaken:
        return error(
            "slot_taken", "Sorry, that time was just taken. Please pick another one.", 409, "start"
        )
    meeting = booked.meeting
    response = JsonResponse(
        {
            **_step_json(booked.step),
            "answer": {"text": booked.label},
            "meeting": {
                "start": _iso(meeting.start),
                "end": _iso(meeting.end),
                "label": booked.label,
                "agent_name": meeting.agent_name,
            },
        },
        status=201,
    )
    # How long the booking waited for its turn (the round-robin pointer's lock).
    response["Server-Timing"] = f"lock;dur={booked.lock_wait_seconds * 1000:.2f}"
    return response


@widget_api(methods=("POST",), body=IdentifyIn)
def identify(request, site, data: IdentifyIn):
    visitor = services.visitor_for_key(site=site, visitor_key=data.visitor_id)
    if visitor is None:
        return _unknown_visitor()
    attributes = data.model_dump(exclude={"visitor_id", "mkto_trk"}, exclude_none=True)
    services.identify_visitor(visitor=visitor, attributes=attributes, marketo_cookie=data.mkto_trk)
    return JsonResponse({"identified": sorted(attributes)})


def avatar(request, site_key: str):
    """The site's bot avatar, for the widget's <img>. Public and outside @widget_api: image
    requests carry no Origin header, and the picture is shown on the customer's page anyway.
    The URL the session hands out names the version, so that URL may be cached for good."""
    if request.method != "GET":
        response = error("method_not_allowed", "Use GET.", 405)
        response["Allow"] = "GET"
        return response
    site = site_for_key(site_key)
    if site is None:
        return error("unknown_site", "No site has this key.", 404)
    if not site.avatar_version:
        return error("no_avatar", "This site has no avatar.", 404)
    etag = f'"{site.avatar_version}"'
    if request.META.get("HTTP_IF_NONE_MATCH") == etag:
        response = HttpResponse(status=304)
    else:
        # Read here, not with the memoised site (site_for_key defers it): only this route needs
        # the bytes.
        image = Site.objects.filter(pk=site.pk).values_list("avatar", flat=True).first()
        if not image:
            return error("no_avatar", "This site has no avatar.", 404)
        response = HttpResponse(bytes(image), content_type=site.avatar_content_type)
    response["ETag"] = etag
    if request.GET.get("v") == site.avatar_version:
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        # An old or missing version: whatever is current now, checked again next time.
        response["Cache-Control"] = "public, no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    # Opened on its own, the image can do nothing: no scripts, no loads, no forms.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
def openapi(request):
    # Served from the file kept in the repository, so the document and the code review together.
    return HttpResponse(OPENAPI_PATH.read_bytes(), content_type="application/json")


def openapi_document() -> dict:
    return json.loads(OPENAPI_PATH.read_text())
