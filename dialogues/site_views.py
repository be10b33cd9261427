"""A site's branding, configuration and installation pages.

Branding and installation are for marketing admins and marketing users of the site; the
configuration (origins, the chat switch, blocked email domains, the privacy link) for its
marketing admins. Anyone else gets a 404 from dialogues.access.site_for.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from dialogues import services
from dialogues.access import ADMIN_ONLY, MANAGE_DIALOGUES, has_role, site_for
from dialogues.site_forms import FONT_SUGGESTIONS, BrandingForm, SiteSettingsForm
from dialogues.site_forms import with_free_mail_domains as free_mail_filled
from dialogues.theme import Theme


def _avatar_url(site) -> str:
    if not site.avatar_version:
        return ""
    return reverse("widget:avatar", args=[site.public_key]) + f"?v={site.avatar_version}"


@require_http_methods(["GET", "POST"])
@login_required
def branding(request, site_id):
    """The widget's look, with a live preview that follows the form before it is saved."""
    site = site_for(request.user, site_id, roles=MANAGE_DIALOGUES)
    if request.method == "POST":
        form = BrandingForm(request.POST, request.FILES)
        if form.is_valid():
            services.update_branding(
                site_id=site.pk,
                theme=form.theme(),
                avatar=form.cleaned_data["avatar"],
                remove_avatar=form.cleaned_data["remove_avatar"],
            )
            messages.success(request, "Branding saved: visitors see it on their next page.")
            return redirect(reverse("dialogues:branding", args=[site.pk]))
        status = 400
    else:
        form = BrandingForm(initial=Theme.model_validate(site.theme).model_dump())
        status = 200
    return render(
        request,
        "dialogues/branding.html",
        {
            "site": site,
            "form": form,
            "avatar_url": _avatar_url(site),
            # The preview starts from what visitors see now; the page's script follows the form.
            "saved_theme": Theme.model_validate(site.theme).model_dump(),
            "font_suggestions": FONT_SUGGESTIONS,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@login_required
def site_settings(request, site_id):
    """Where the widget may run, whether it chats, whose emails it refuses, the privacy link."""
    site = site_for(request.user, site_id, roles=ADMIN_ONLY)
    status = 200
    if request.method == "POST" and "fill_free_mail" in request.POST:
        # Fill the list in the form only; the admin reviews it and saves.
        form = SiteSettingsForm(free_mail_filled(request.POST))
        messages.info(request, "Common free mail providers added below. Save to apply them.")
    elif request.method == "POST":
        form = SiteSettingsForm(request.POST)
        if form.is_valid():
            services.update_site_settings(site_id=site.pk, **form.cleaned_data)
            messages.success(request, "Site settings saved.")
            return redirect(reverse("dialogues:site_settings", args=[site.pk]))
        status = 400
    else:
        form = SiteSettingsForm(
            initial={
                "allowed_origins": "\n".join(site.allowed_origins),
                "chat_enabled": site.chat_enabled,
                "blocked_email_domains": "\n".join(site.blocked_email_domains),
                "privacy_url": site.privacy_url,
            }
        )
    return render(
        request,
        "dialogues/site_settings.html",
        {"site": site, "form": form},
        status=status,
    )


@require_GET
@login_required
def install(request, site_id):
    """The snippet to paste into the customer's pages, and what must be true for it to work."""
    site = site_for(request.user, site_id, roles=MANAGE_DIALOGUES)
    widget_src = f"{settings.SITE_ROOT}{static('widget/dynchat.js')}"
    snippet = f'<script src="{widget_src}" data-site="{site.public_key}" async></script>'
    return render(
        request,
        "dialogues/install.html",
        {
            "site": site,
            "snippet": snippet,
            "site_admin": has_role(request.user, site, ADMIN_ONLY),
        },
    )
