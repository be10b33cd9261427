"""The public widget API, /api/widget/v1/. Described in widget/openapi.json."""

import json
import uuid
from pathlib import Path

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from dialogues.flow import engine
from dialogues.flow.inputs import InvalidAnswer
from dialogues.theme import Theme
from widget import keys, services
from widget.decorators import error, widget_api
from widget.models import Conversation
from widget.schemas import AnswerIn, ConversationIn, IdentifyIn, SessionIn

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def _prompt_json(prompt: engine.Prompt | None) -> dict | None:
    if prompt is None:
        return None
    data = {"card_id": prompt.card_id, "step": prompt.step, "kind": prompt.kind}
    if prompt.kind == "choice":
        data["choices"] = [{"label": c.label, "value": c.value} for c in prompt.choices]
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
        events.append(public)
    return {
        "conversation_id": str(step.conversation.pk),
        "messages": [{"card_id": m.card_id, "text": m.text} for m in outcome.messages],
        "prompt": _prompt_json(outcome.prompt),
        "done": outcome.state.done,
        "events": events,
    }


def _conversation_or_error(request, site, conversation_id: str):
    """The conversation, if it is this site's and the bearer token is its own; else an error."""
    try:
        # Parsed here rather than by a <uuid:> converter, so a mangled id gets a JSON error too.
        conversation_id = uuid.UUID(conversation_id)
    except ValueError:
        conversation = None
    else:
        conversation = Conversation.objects.filter(pk=conversation_id, site=site).first()
    if conversation is None:
        return error("conversation_not_found", "No such conversation on this site.", 404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return error(
            "missing_token", "Send the conversation token as 'Authorization: Bearer <token>'.", 401
        )
    if not keys.matches(token.strip(), conversation.token_hash):
        return error("invalid_token", "The token does not belong to this conversation.", 403)
    return conversation


@widget_api(methods=("POST",), body=SessionIn, scope="session")
def sessions(request, site, data: SessionIn):
    session = services.start_visitor_session(site=site, visitor_key=data.visitor_id)
    offer = session.offer
    return JsonResponse(
        {
            "visitor_id": session.visitor_key,
            "chat_enabled": site.chat_enabled,
            "theme": Theme.model_validate(site.theme).model_dump(),
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
    visitor = services.find_visitor(site=site, visitor_key=data.visitor_id)
    if visitor is None:
        return error(
            "unknown_visitor", "Start a session first; this visitor is unknown.", 404, "visitor_id"
        )
    try:
        step, token = services.start_conversation(
            site=site, visitor=visitor, dialogue_id=data.dialogue_id, page_url=data.page_url
        )
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
    conversation = _conversation_or_error(request, site, conversation_id)
    if isinstance(conversation, JsonResponse):
        return conversation
    try:
        step = services.answer_conversation(
            conversation_id=conversation.pk, card_id=data.card_id, step=data.step, value=data.value
        )
    except InvalidAnswer as exc:
        return error(exc.code, exc.message, 422, exc.field)
    except engine.ConversationOver:
        return error("conversation_over", "This conversation has ended.", 409)
    except engine.NotCurrentCard:
        return error(
            "not_current_card",
            "This answer is not for the question being asked (already answered, or out of date).",
            409,
            "card_id",
        )
    return JsonResponse({**_step_json(step), "answer": {"text": step.outcome.answer_text}})


@widget_api(methods=("GET",))
def conversation_detail(request, site, conversation_id: str):
    conversation = _conversation_or_error(request, site, conversation_id)
    if isinstance(conversation, JsonResponse):
        return conversation
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
            "prompt": _prompt_json(engine.current_prompt(flow, state)),
            "done": state.done,
        }
    )


@widget_api(methods=("POST",), body=IdentifyIn)
def identify(request, site, data: IdentifyIn):
    visitor = services.find_visitor(site=site, visitor_key=data.visitor_id)
    if visitor is None:
        return error(
            "unknown_visitor", "Start a session first; this visitor is unknown.", 404, "visitor_id"
        )
    attributes = data.model_dump(exclude={"visitor_id"}, exclude_none=True)
    services.identify_visitor(visitor=visitor, attributes=attributes)
    return JsonResponse({"identified": sorted(attributes)})


@require_GET
def openapi(request):
    # Served from the file kept in the repository, so the document and the code review together.
    return HttpResponse(OPENAPI_PATH.read_bytes(), content_type="application/json")


def openapi_document() -> dict:
    return json.loads(OPENAPI_PATH.read_text())
