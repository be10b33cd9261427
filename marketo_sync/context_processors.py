from marketo_sync.access import is_marketo_admin


def navigation(request):
    """Whether to show the Marketo link: only to those who may open it."""
    user = getattr(request, "user", None)
    return {"show_marketo_nav": bool(user and is_marketo_admin(user))}
