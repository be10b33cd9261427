"""The preview panel, its host frame, and the preview API the widget talks to inside it.

The API mirrors the widget API's paths, bodies and answers (widget/openapi.json), so the very
same dynchat.js runs the draft; only `data-api` and the key differ. See dialogues/preview.py.
"""

import secrets
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import get_script_prefix
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt

from calendars.display import when_label, zone_named
from dialogues import preview
from dialogues.access import dialogue_for
from dialogues.flow import engine
from dialogues.flow.inputs import InvalidAnswer
from meetings import services as meetings
from widget.decorators import error, parse_body, parse_query
from widget.schemas import AnswerIn, BookingIn, ConversationIn, IdentifyIn, SessionIn, SlotsQuery
from widget.services import visitor_facts
from widget.views import bearer_token, offered_days_json, prompt_json, theme_json


@login_required
def preview_panel(request, site_id, dialogue_id):
    """The draft running in a panel beside its problems, if any; Restart starts it afresh."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    return render(
        request,
        "dialogues/preview.html",
        {"site": site, "dialogue": dialogue, "problems": _draft_problems(dialogue)},
    )


def _draft_problems(dialogue) -> list:
    """What stops the draft from running in the preview (empty: it runs)."""
    try:
        preview.runnable_flow(dialogue)
    except preview.DraftInvalid as invalid:
        return invalid.problems
    return []


@login_required
@never_cache
@xframe_options_sameorigin
def preview_frame(request, site_id, dialogue_id):
    """A blank stand-in for the customer's page, with the widget running the draft."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    problems = _draft_problems(dialogue)
    # The widget appends /api/widget/v1/sites/<key>/... to this, as it does to its own origin.
    api_root = request.build_absolute_uri(get_script_prefix() + "preview")
    return render(
        request,
        "dialogues/preview_frame.html",
        {
            "site": site,
            "dialogue": dialogue,
            "problems": problems,
            "key": preview.preview_key(user=request.user, dialogue=dialogue),
            "api_root": api_root,
            "widget_src": f"{settings.SITE_ROOT}{static('widget/dynchat.js')}",
        },
    )


def preview_api(*, methods: tuple[str, ...], body=None):
    """The preview API's gate: the signed key instead of a site key and origin, the same error
    shape and body parsing as the widget API."""

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, key: str, **kwargs):
            if request.method not in methods:
                return error("method_not_allowed", f"Use {' or '.join(methods)}.", 405)
            try:
                opened = preview.open_preview(key)
            except preview.PreviewDenied:
                return error("preview_expired", "This preview has expired; reload it.", 403)
            except preview.DraftInvalid:
                return error(
                    "draft_invalid", "The draft changed and cannot run; reload the preview.", 409
                )
            if body is not None:
                parsed = parse_body(request, body)
                if isinstance(parsed, JsonResponse):
                    return parsed
                kwargs["data"] = parsed
            return view(request, opened, **kwargs)

        return wrapper

    return decorator


def _step(conversation_id: str, outcome: engine.Outcome) -> dict:
    return {
        "conversation_id": conversation_id,
        "messages": [{"card_id": m.card_id, "text": m.text} for m in outcome.messages],
        "prompt": prompt_json(outcome.prompt),
        "done": outcome.state.done,
        # Host-page callbacks are for live traffic; a preview reports nothing.
        "events": [],
    }


@preview_api(methods=("POST",), body=SessionIn)
def sessions(request, opened: preview.Preview, data: SessionIn):
    visitor_id = data.visitor_id or f"preview.{secrets.token_urlsafe(16)}"
    dialogue = opened.dialogue
    return JsonResponse(
        {
            "visitor_id": visitor_id,
            "visitor_state": None,
            "chat_enabled": True,
            "theme": theme_json(request, opened.site),
            # The draft starts at once, whatever its trigger: the marketer is waiting for it.
            "dialogue": {
                "id": dialogue.pk,
                "name": dialogue.name,
                "version": 0,
                "trigger": {"type": "time_on_page", "seconds": 0},
            },
        }
    )


@preview_api(methods=("POST",), body=ConversationIn)
def conversations(request, opened: preview.Preview, data: ConversationIn):
    conversation, outcome, token = preview.start(opened, visitor_id=data.visitor_id)
    return JsonResponse({**_step(conversation.id, outcome), "token": token}, status=201)


@preview_api(methods=("GET",))
def conversation_detail(request, opened: preview.Preview, conversation_id: str):
    try:
        current = preview.conversation(
            opened, conversation_id=conversation_id, token=bearer_token(request)
        )
    except preview.ConversationGone:
        return error("conversation_not_found", "No such conversation in this preview.", 404)
    return JsonResponse(
        {
            "conversation_id": current.id,
            "dialogue_id": opened.dialogue.pk,
            "version": 0,
            "transcript": current.transcript,
            "prompt": prompt_json(engine.current_prompt(opened.flow, current.state)),
            "done": current.state.done,
        }
    )


@preview_api(methods=("POST",), body=AnswerIn)
def answers(request, opened: preview.Preview, conversation_id: str, data: AnswerIn):
    try:
        current, outcome = preview.answer(
            opened,
            conversation_id=conversation_id,
            token=bearer_token(request),
            card_id=data.card_id,
            step=data.step,
            value=data.value,
        )
    except preview.ConversationGone:
        return _gone()
    except InvalidAnswer as exc:
        return error(exc.code, exc.message, 422, exc.field)
    except engine.ConversationOver:
        return error("conversation_over", "This conversation has ended.", 409)
    except engine.NotCurrentCard:
        return _not_current()
    return JsonResponse({**_step(current.id, outcome), "answer": {"text": outcome.answer_text}})


def _gone() -> JsonResponse:
    return error("conversation_not_found", "No such conversation in this preview.", 404)


def _not_current() -> JsonResponse:
    return error("not_current_card", "This answer is not for the current question.", 409)


def _bad_zone() -> JsonResponse:
    return error(
        "invalid_field", "time_zone: not a time zone name such as Europe/Paris.", 400, "time_zone"
    )


@preview_api(methods=("GET",))
def slots(request, opened: preview.Preview, conversation_id: str):
    """The site's real free times: the marketer sees what visitors would be offered now."""
    query = parse_query(request, SlotsQuery)
    if isinstance(query, JsonResponse):
        return query
    try:
        current = preview.conversation(
            opened, conversation_id=conversation_id, token=bearer_token(request)
        )
        card = preview.booking_card(opened, current, card_id=query.card_id, step=query.step)
        offer = meetings.offered_days(
            site=opened.site,
            facts=visitor_facts({**current.lead, **current.state.captured}),
            card=card,
            time_zone=query.time_zone,
        )
    except preview.ConversationGone:
        return _gone()
    except engine.ConversationOver:
        return error("conversation_over", "This conversation has ended.", 409)
    except engine.NotCurrentCard:
        return _not_current()
    except meetings.InvalidTimeZone:
        return _bad_zone()
    return JsonResponse(offered_days_json(offer))


@preview_api(methods=("POST",), body=BookingIn)
def bookings(request, opened: preview.Preview, conversation_id: str, data: BookingIn):
    """Runs on as if booked; nothing is stored (see preview.book)."""
    zone = zone_named(data.time_zone)
    if zone is None:
        return _bad_zone()
    label = when_label(data.start, zone)
    try:
        current, outcome = preview.book(
            opened,
            conversation_id=conversation_id,
            token=bearer_token(request),
            card_id=data.card_id,
            step=data.step,
            label=label,
        )
    except preview.ConversationGone:
        return _gone()
    except engine.ConversationOver:
        return error("conversation_over", "This conversation has ended.", 409)
    except engine.NotCurrentCard:
        return _not_current()
    return JsonResponse(
        {
            **_step(current.id, outcome),
            "answer": {"text": label},
            # No agent is chosen in a preview, so the meeting has no length: end is its start.
            "meeting": {
                "start": data.start.isoformat(),
                "end": data.start.isoformat(),
                "label": label,
                "agent_name": "(preview: nobody is booked)",
            },
        },
        status=201,
    )


@preview_api(methods=("POST",), body=IdentifyIn)
def identify(request, opened: preview.Preview, data: IdentifyIn):
    attributes = data.model_dump(exclude={"visitor_id"}, exclude_none=True)
    preview.identify(opened, visitor_id=data.visitor_id, attributes=attributes)
    return JsonResponse({"identified": sorted(attributes)})
