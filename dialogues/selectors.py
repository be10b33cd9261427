"""Reads of sites and dialogues used on hot paths."""

from dataclasses import dataclass
from threading import Lock

from dialogues.flow.cards import Flow, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Site

_flows: dict[int, Flow] = {}
_flows_lock = Lock()
_FLOW_CACHE_SIZE = 1000


def version_flow(version: DialogueVersion) -> Flow:
    """The parsed flow of a published version.

    Versions never change once written, so each process parses a version once and keeps it.
    """
    flow = _flows.get(version.pk)
    if flow is None:
        flow = parse_flow(version.flow)
        with _flows_lock:
            if len(_flows) >= _FLOW_CACHE_SIZE:
                _flows.clear()
            _flows[version.pk] = flow
    return flow


@dataclass(frozen=True)
class DialogueOffer:
    """The dialogue a page should show: what the widget needs to trigger it."""

    dialogue_id: int
    name: str
    version: int
    trigger: dict


def dialogue_to_offer(*, site: Site, excluded_dialogue_ids: set[int]) -> DialogueOffer | None:
    """The highest-priority published dialogue of the site not in excluded_dialogue_ids.

    One query, whatever the number of dialogues (the partial index published_by_priority).
    """
    if not site.chat_enabled:
        return None
    rows = (
        Dialogue.objects.filter(
            site=site, status=Dialogue.Status.PUBLISHED, current_version__isnull=False
        )
        .order_by("-priority", "id")
        .values_list("id", "name", "trigger", "current_version__number")
    )
    for dialogue_id, name, trigger, number in rows:
        if dialogue_id not in excluded_dialogue_ids:
            return DialogueOffer(dialogue_id, name, number, trigger)
    return None


def sites_for_user(user) -> list[Site]:
    return list(Site.objects.filter(members=user).order_by("name"))
