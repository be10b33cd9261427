"""Changes to routing: the one write path for queues, account owners, custom rules and the
fallback message. (The round-robin pointer is moved only by routing.assign, inside the booking
transaction.)"""

from django.db import transaction
from django.db.models import Max

from dialogues.models import Membership, Site
from routing.models import QueueMember


@transaction.atomic
def join_queues(user) -> list[QueueMember]:
    """Put `user` at the end of the queue of every site they are a sales agent on, unless they
    are in it already (in place, paused or not). Called when they connect a calendar: the
    product's promise is that connecting one is what puts an agent in the routing queue."""
    joined = []
    site_ids = Membership.objects.filter(user=user, role=Membership.Role.AGENT).values_list(
        "site_id", flat=True
    )
    for site_id in site_ids:
        if QueueMember.objects.filter(site_id=site_id, user=user).exists():
            continue
        joined.append(_append(site_id, user))
    return joined


def _append(site_id: int, user) -> QueueMember:
    """A new place at the end of the site's queue. The caller holds a transaction; the site's
    row is locked so two agents joining at once do not share a position."""
    Site.objects.select_for_update().only("pk").get(pk=site_id)
    last = QueueMember.objects.filter(site_id=site_id).aggregate(last=Max("position"))["last"]
    return QueueMember.objects.create(
        site_id=site_id, user=user, position=0 if last is None else last + 1
    )
