"""A site's team: its marketing admins invite people, change their roles and remove them."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.tokens import default_token_generator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_POST

from calendars.models import CREDENTIAL_FIELDS
from dialogues import services
from dialogues.access import ADMIN_ONLY, site_for
from dialogues.models import Membership


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices)


@login_required
def members(request, site_id):
    """The site's members and roles, and the invitation form. A new account gets a link to
    choose its password (valid PASSWORD_RESET_TIMEOUT), shown once to the admin to pass on."""
    site = site_for(request.user, site_id, roles=ADMIN_ONLY)
    form = InviteForm()
    status = 200
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                membership, created = services.invite_member(
                    site=site, email=form.cleaned_data["email"], role=form.cleaned_data["role"]
                )
            except services.MembershipRefused as refused:
                form.add_error("email", str(refused))
            else:
                user = membership.user
                text = (
                    f"{user.email} is now {membership.get_role_display().lower()} on {site.name}."
                )
                if created:
                    link = request.build_absolute_uri(
                        reverse(
                            "password_reset_confirm",
                            args=[
                                urlsafe_base64_encode(force_bytes(user.pk)),
                                default_token_generator.make_token(user),
                            ],
                        )
                    )
                    text += f" Send them this link to choose their password: {link}"
                messages.success(request, text)
                return redirect("dialogues:members", site.pk)
        status = 400
    # Agents' calendars come in the same query (a user has at most one), for the Calendar column.
    team = list(
        Membership.objects.filter(site=site)
        .select_related("user", "user__calendar_connection")
        # Not the tokens: the page shows the status only, and decrypting is wasted work.
        .defer(*(f"user__calendar_connection__{name}" for name in CREDENTIAL_FIELDS))
        .order_by("role", "user__email")
    )
    for membership in team:
        # None when the agent has no calendar (the reverse one-to-one raises AttributeError).
        membership.calendar = getattr(membership.user, "calendar_connection", None)
    return render(
        request,
        "dialogues/members.html",
        {"site": site, "form": form, "team": team, "roles": Membership.Role.choices},
        status=status,
    )


@login_required
@require_POST
def change_role(request, site_id, membership_id):
    site = site_for(request.user, site_id, roles=ADMIN_ONLY)
    if not Membership.objects.filter(pk=membership_id, site=site).exists():
        raise Http404("No such member of this site.")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("dialogues:members", site.pk)
    try:
        membership, released = services.change_member_role(
            site=site, membership_id=membership_id, role=form.cleaned_data["role"]
        )
    except Membership.DoesNotExist:
        raise Http404("No such member of this site.") from None
    except services.MembershipRefused as refused:
        messages.error(request, str(refused))
    else:
        who = membership.user.email or membership.user.get_username()
        messages.success(request, f"{who} is now {membership.get_role_display().lower()}.")
        _tell_routing_changes(request, released)
    return redirect("dialogues:members", site.pk)


def _tell_routing_changes(request, released) -> None:
    """What someone who stopped being a sales agent lost in the site's routing."""
    if not released:
        return
    lost = []
    if released.queue_place:
        lost.append("the routing queue")
    if released.rules:
        names = ", ".join(f"“{name}”" for name in released.rules)
        lost.append(f"the custom rule{'s' if len(released.rules) > 1 else ''} {names}")
    text = f"They left {' and '.join(lost)}." if lost else ""
    if released.accounts:
        count = released.accounts
        text += (
            f" Their {count} account{'s' if count > 1 else ''} no longer "
            f"{'have' if count > 1 else 'has'} an owner and {'were' if count > 1 else 'was'} "
            "removed from account routing: those visitors now go by the rules and the queue."
        )
    for name in released.rules_switched_off:
        text += f" The rule “{name}” had no other agent and was switched off."
    messages.warning(request, text.strip())


@login_required
@require_POST
def remove(request, site_id, membership_id):
    site = site_for(request.user, site_id, roles=ADMIN_ONLY)
    try:
        released = services.remove_member(site=site, membership_id=membership_id)
    except Membership.DoesNotExist:
        raise Http404("No such member of this site.") from None
    except services.MembershipRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "Removed from the site.")
        _tell_routing_changes(request, released)
        if (
            not site.membership_set.filter(user=request.user).exists()
            and not request.user.is_superuser
        ):
            return redirect("dialogues:home")  # they removed themselves
    return redirect("dialogues:members", site.pk)
