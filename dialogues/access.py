"""Who may see which site: one helper every marketer view goes through.

A user sees only the sites they belong to, and within a site only what their role allows:
marketing admins everything, marketing users dialogues, branding and reports, sales agents
their own calendar and meetings (not dialogues). Anything else is a 404, so a guessed URL
tells nothing about what exists."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from dialogues.models import Dialogue, Membership, Site

MANAGE_DIALOGUES = frozenset({Membership.Role.ADMIN, Membership.Role.MARKETER})
ADMIN_ONLY = frozenset({Membership.Role.ADMIN})


def site_for(user, site_id: int, *, roles: frozenset[str] = MANAGE_DIALOGUES) -> Site:
    """The site `site_id` if `user` holds one of `roles` on it (superusers: any site)."""
    if not user.is_authenticated:
        raise Http404("No such site.")
    sites = Site.objects.all()
    if not user.is_superuser:
        sites = sites.filter(membership__user=user, membership__role__in=roles)
    site = sites.filter(pk=site_id).first()
    if site is None:
        raise Http404("No such site.")
    return site


def dialogue_for(user, site_id: int, dialogue_id: int) -> tuple[Site, Dialogue]:
    """The site and one of its dialogues, for a user who may manage its dialogues (else 404,
    including for another site's dialogue id under this site's URL)."""
    site = site_for(user, site_id)
    return site, get_object_or_404(Dialogue, pk=dialogue_id, site=site)


def has_role(user, site: Site, roles: frozenset[str]) -> bool:
    """Whether `user` holds one of `roles` on `site` (superusers: always), e.g. to offer a link
    to a page only to those who may open it."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or site.membership_set.filter(user=user, role__in=roles).exists()
