from dialogues.models import Membership


def navigation(request):
    """Whether to show the "Your calendar" link: to sales agents only."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show_calendar_nav": False}
    agent = Membership.objects.filter(user=user, role=Membership.Role.AGENT).exists()
    return {"show_calendar_nav": agent}
