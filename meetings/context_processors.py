from dialogues.models import Membership, Site


def navigation(request):
    """The sites whose meetings the top bar links to: a sales agent's own meetings, per site
    they are an agent of (marketers reach a site's meetings through its site navigation)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"agent_meeting_sites": []}
    sites = Site.objects.filter(
        membership__user=user, membership__role=Membership.Role.AGENT
    ).order_by("name", "pk")
    return {"agent_meeting_sites": list(sites.values("pk", "name"))}
