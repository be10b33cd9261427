"""The flow editor: a dialogue's draft cards, each with its problems, edited in place.

One page (`/sites/<id>/dialogues/<did>/edit/`) and one URL per action. Every action is a plain
form or link that works without JavaScript (a post redirects back to the page); with htmx the
same requests return only the editor (`_flow_editor.html`) or, while a card is being edited,
only that card (`_card_form.html`). Refused input answers 400 (a stale save 409) and htmx swaps
it in anyway (see the `hx-on` in `_flow_editor.html`), so errors appear next to the fields.

Access goes through dialogue_for(): marketing admins and users of the site; anyone else 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import retarget

from dialogues import services
from dialogues.access import dialogue_for
from dialogues.editor_forms import CARD_TYPE_LABELS, OPERATOR_LABELS, CardForm
from dialogues.flow import edits
from dialogues.flow.cards import CARD_TYPES, INPUT_TYPES, STANDARD_ATTRIBUTES, FlowInvalid
from dialogues.flow.checks import problems_by_card
from dialogues.validation import draft_problems

# An undo token carries the deleted card; signed so it cannot be forged, and short-lived.
UNDO_SALT = "dialogues.editor.undo-delete"
UNDO_MAX_AGE = 24 * 3600
STALE_MESSAGE = (
    "Someone else saved this card while you were editing it, so your changes were not saved. "
    "Cancel to see their version, then make your change again."
)


def _editor_url(dialogue, anchor: str = "") -> str:
    url = reverse("dialogues:editor", args=[dialogue.site_id, dialogue.pk])
    return f"{url}#card-{anchor}" if anchor else url


def _undo_session_key(dialogue) -> str:
    return f"dialogues.editor.undo.{dialogue.pk}"


@login_required
def editor(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    # After a delete without htmx, the redirect lands here with the undo offer in the session.
    undo = request.session.pop(_undo_session_key(dialogue), "")
    return _render_editor(request, site, dialogue, undo=undo)


@require_POST
@login_required
def add_card(request, site_id, dialogue_id):
    """Add a card of the posted `type`, after the card `after` or at the end."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    card_type, after = request.POST.get("type", ""), request.POST.get("after") or None
    if card_type not in CARD_TYPES:
        return _render_editor(
            request, site, dialogue, notice="Pick the type of card to add.", status=400
        )
    try:
        card = services.add_card(dialogue_id=dialogue.pk, card_type=card_type, after=after)
    except edits.CardNotFound:
        raise Http404("No such card.") from None
    return _changed(request, site, dialogue, anchor=card["id"])


@login_required
def edit_card(request, site_id, dialogue_id, card_id):
    """GET: the card's form. POST: save it (action "save") or change its rows."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    card = _card_or_404(dialogue, card_id)
    targets = _targets(dialogue.flow, card_id)
    if request.method == "GET":
        form = CardForm(card, targets=targets, revision=edits.card_revision(card))
        return _render_card_form(request, site, dialogue, form)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    form = CardForm(card, targets=targets, data=request.POST)
    action = request.POST.get("action", "save")
    if action != "save":
        return _render_card_form(request, site, dialogue, form.with_action(action))
    if not form.is_valid():
        return _render_card_form(request, site, dialogue, form, status=400)
    try:
        services.update_draft_card(
            dialogue_id=dialogue.pk, card=form.cleaned_card(), revision=form.revision
        )
    except services.StaleCard:
        form.non_field_errors.append(STALE_MESSAGE)
        return _render_card_form(request, site, dialogue, form, status=409)
    except edits.CardNotFound:
        raise Http404("No such card.") from None
    response = _changed(request, site, dialogue, anchor=card_id)
    # The form was swapped in for the card alone; the saved card changes others' problems too.
    return retarget(response, "#flow-editor") if request.htmx else response


@require_POST
@login_required
def delete_card(request, site_id, dialogue_id, card_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        deleted = services.delete_card(dialogue_id=dialogue.pk, card_id=card_id)
    except edits.CardNotFound:
        raise Http404("No such card.") from None
    token = signing.dumps(
        {"dialogue": dialogue.pk, "deleted": deleted}, salt=UNDO_SALT, compress=True
    )
    return _changed(request, site, dialogue, undo=token)


@require_POST
@login_required
def undo_delete(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        payload = signing.loads(request.POST.get("token", ""), salt=UNDO_SALT, max_age=UNDO_MAX_AGE)
    except signing.BadSignature:
        payload = None
    if not payload or payload.get("dialogue") != dialogue.pk:
        return _render_editor(
            request, site, dialogue, notice="This undo has expired; nothing changed.", status=400
        )
    try:
        card = services.undo_delete_card(dialogue_id=dialogue.pk, deleted=payload["deleted"])
    except ValueError as refused:
        return _render_editor(request, site, dialogue, notice=str(refused), status=409)
    return _changed(request, site, dialogue, anchor=card["id"])


@require_POST
@login_required
def move_card(request, site_id, dialogue_id, card_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if offset is None:
        return _render_editor(request, site, dialogue, notice="Move a card up or down.", status=400)
    try:
        services.move_card(dialogue_id=dialogue.pk, card_id=card_id, offset=offset)
    except edits.CardNotFound:
        raise Http404("No such card.") from None
    return _changed(request, site, dialogue, anchor=card_id)


@require_POST
@login_required
def set_start_card(request, site_id, dialogue_id, card_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        services.set_start_card(dialogue_id=dialogue.pk, card_id=card_id)
    except edits.CardNotFound:
        raise Http404("No such card.") from None
    return _changed(request, site, dialogue, anchor=card_id)


@require_POST
@login_required
def publish(request, site_id, dialogue_id):
    """Publish from the editor: refused, the editor shows why next to each card."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        version = services.publish_dialogue(dialogue_id=dialogue.pk, user=request.user)
    except FlowInvalid:
        return _render_editor(request, site, dialogue, refused=True, status=400)
    messages.success(request, f"Published version {version.number}: visitors see it now.")
    return redirect(reverse("dialogues:detail", args=[site.pk, dialogue.pk]))


# --- rendering ---------------------------------------------------------------------------------


def _changed(request, site, dialogue, *, anchor: str = "", undo: str = ""):
    """After a change: htmx gets the editor again; a plain post is redirected to the page."""
    if request.htmx:
        dialogue.refresh_from_db(fields=["flow", "updated_at"])
        return _render_editor(request, site, dialogue, undo=undo)
    if undo:
        request.session[_undo_session_key(dialogue)] = undo
    return redirect(_editor_url(dialogue, anchor))


def _card_or_404(dialogue, card_id: str) -> dict:
    try:
        return edits.find(dialogue.flow, card_id)[1]
    except edits.CardNotFound:
        raise Http404("No such card.") from None


def _targets(flow: dict, card_id: str) -> list[tuple[str, str]]:
    """The cards a card may lead to: every other card, named by id and what it is."""
    return [
        (card["id"], f"{card['id']} \u00b7 {CARD_TYPE_LABELS.get(card.get('type'), '?')}")
        for card in edits.cards(flow)
        if card.get("id") != card_id
    ]


def _render_editor(
    request, site, dialogue, *, editing=None, undo="", notice="", refused=False, status=200
):
    context = _editor_context(site, dialogue, editing=editing)
    context.update(undo=undo, notice=notice, refused=refused)
    if undo:
        context["undo_card"] = signing.loads(undo, salt=UNDO_SALT)["deleted"]["card"]["id"]
    template = "dialogues/_flow_editor.html" if request.htmx else "dialogues/dialogue_editor.html"
    return render(request, template, context, status=status)


def _render_card_form(request, site, dialogue, form: CardForm, *, status=200):
    if not request.htmx:
        return _render_editor(request, site, dialogue, editing=form, status=status)
    context = _editor_context(site, dialogue, editing=form)
    item = next(item for item in context["items"] if item["form"] is form)
    return render(request, "dialogues/_card_form.html", {**context, "item": item}, status=status)


def _editor_context(site, dialogue, *, editing: CardForm | None = None) -> dict:
    flow = dialogue.flow if isinstance(dialogue.flow, dict) else {}
    problems = draft_problems(flow)
    grouped = problems_by_card(problems)
    cards = edits.cards(flow)
    items = [
        {
            "card": card,
            "number": number,
            "problems": grouped.get(card.get("id"), []),
            "is_start": card.get("id") == flow.get("start"),
            "first": number == 1,
            "last": number == len(cards),
            "form": editing if editing and editing.card_id == card.get("id") else None,
            **_describe(card),
        }
        for number, card in enumerate(cards, start=1)
    ]
    return {
        "site": site,
        "dialogue": dialogue,
        "items": items,
        "flow_problems": grouped.get(None, []),
        "problem_count": len(problems),
        "card_types": list(CARD_TYPE_LABELS.items()),
        "operators": OPERATOR_LABELS,
        "subjects": _subject_suggestions(cards),
    }


def _describe(card: dict) -> dict:
    """What a card does, in words, and where each of its ways out leads."""
    kind = card.get("type")
    details: list[str] = []
    exits: list[tuple[str, str | None]] = []
    if kind in ("message", "capture", "goal"):
        exits.append(("Then", card.get("next")))
    if kind == "question":
        for choice in card.get("choices") or []:
            label = f"\u201c{choice.get('label', '')}\u201d (stores {choice.get('value', '')})"
            exits.append((label, choice.get("next")))
    if kind == "capture":
        attribute = str(card.get("attribute", ""))
        details.append(
            f"Asks for {card.get('input_type', 'text')}, stored as "
            f"{STANDARD_ATTRIBUTES.get(attribute, attribute)}"
            + (", skipped when already known" if card.get("skip_if_known") else "")
        )
    if kind == "branch":
        for number, rule in enumerate(card.get("rules") or [], start=1):
            conditions = "; ".join(_condition_text(c) for c in rule.get("conditions") or [])
            match = "all" if rule.get("match", "all") == "all" else "any"
            exits.append((f"Rule {number}: if {match} of ({conditions})", rule.get("next")))
        exits.append(("Otherwise", card.get("default_next")))
    if kind == "goal":
        details.append(f"Goal reached: {card.get('name') or '(no name yet)'}")
    if kind == "booking":
        details.append(f"Offers meeting times over the next {card.get('days', 7)} days")
        exits.append(("After booking", card.get("next")))
        if card.get("skip_label"):
            exits.append((f"\u201c{card['skip_label']}\u201d", card.get("skip_next")))
    if kind == "end":
        details.append("Ends the conversation")
    # A booking may be the last card: after it (or its skip) the conversation just ends.
    no_target = "the end of the conversation" if kind == "booking" else "nowhere yet"
    return {
        "says": card.get("text", ""),
        "details": details,
        "exits": exits,
        "no_target": no_target,
    }


def _condition_text(condition: dict) -> str:
    """How a condition reads: lead.email is not empty, answer.size is one of small, mid."""
    value = condition.get("value")
    value = ", ".join(value) if isinstance(value, list) else str(value or "")
    operator = OPERATOR_LABELS.get(condition.get("operator"), str(condition.get("operator", "")))
    return " ".join(part for part in (str(condition.get("subject", "")), operator, value) if part)


def _subject_suggestions(cards: list[dict]) -> list[str]:
    """Fields a branch condition can test, offered as suggestions (not a limit)."""
    answers = [f"answer.{c['id']}" for c in cards if c.get("type") in INPUT_TYPES]
    return [*(f"lead.{name}" for name in STANDARD_ATTRIBUTES), *answers]
