"""Who may see and run the Marketo sync: marketing admins (of any site) and superusers.

The synced lead database belongs to the installation's one Marketo instance, not to a site, so
its settings are an admin's business; marketing users and sales agents get 403."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from dialogues.models import Membership


def is_marketo_admin(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()


def marketo_admin_required(view):
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_marketo_admin(request.user):
            raise PermissionDenied("Only marketing admins manage the Marketo sync.")
        return view(request, *args, **kwargs)

    return wrapper
