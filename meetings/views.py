"""The invitation email editor: what a visitor receives when they book a meeting.

For the site's marketing admins and marketing users (dialogues.access.site_for with the roles
of the other marketer pages); anyone else gets a 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from dialogues.access import MANAGE_DIALOGUES, site_for
from meetings import invitation_text, services
from meetings.forms import InvitationForm
from meetings.models import DEFAULT_INVITATION_BODY, DEFAULT_INVITATION_SUBJECT, InvitationTemplate


@require_http_methods(["GET", "POST"])
@login_required
def invitation(request, site_id):
    """Edit the invitation's subject and body. POST buttons: `preview` (the typed text rendered
    with a made-up booking; the htmx typing preview gets the fragment alone), `reset` (the
    default text put in the form), otherwise save. Only saving writes anything; on any error
    nothing is saved."""
    site = site_for(request.user, site_id, roles=MANAGE_DIALOGUES)
    url = reverse("meetings:invitation", args=[site.pk])
    template = InvitationTemplate.objects.filter(site=site).first()
    status = 200
    if request.method == "POST" and "reset" in request.POST:
        form = InvitationForm(
            initial={"subject": DEFAULT_INVITATION_SUBJECT, "body": DEFAULT_INVITATION_BODY},
            preview_url=url,
        )
        messages.info(request, "The default text is in the form below. Save to use it.")
        preview = _preview(DEFAULT_INVITATION_SUBJECT, DEFAULT_INVITATION_BODY)
    elif request.method == "POST":
        form = InvitationForm(request.POST, preview_url=url)
        valid = form.is_valid()
        if "preview" not in request.POST and valid:
            services.update_invitation_template(
                site=site,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                user=request.user,
            )
            messages.success(request, "Invitation email saved: the next booking gets it.")
            return redirect(url)
        preview = _preview(request.POST.get("subject", ""), request.POST.get("body", ""))
        if "preview" in request.POST and request.htmx:
            return render(request, "meetings/_invitation_preview.html", {"preview": preview})
        if "preview" not in request.POST:
            status = 400
    else:
        subject = template.subject if template else DEFAULT_INVITATION_SUBJECT
        body = template.body if template else DEFAULT_INVITATION_BODY
        form = InvitationForm(initial={"subject": subject, "body": body}, preview_url=url)
        preview = _preview(subject, body)
    return render(
        request,
        "meetings/invitation.html",
        {
            "site": site,
            "form": form,
            "preview": preview,
            "template": template,
            "tokens": invitation_text.TOKENS,
        },
        status=status,
    )


def _preview(subject: str, body: str) -> dict:
    """The typed subject and body rendered with a made-up booking, and what is wrong with their
    tokens (shown above the preview, so the marketer sees it while typing)."""
    sample = invitation_text.sample_context()
    body = body.replace("\r\n", "\n")
    return {
        "subject": invitation_text.render_subject(subject, sample),
        "body": invitation_text.render_body(body, sample),
        "problems": invitation_text.template_problems(subject)
        + invitation_text.template_problems(body),
        "sample": sample,
    }
