"""The targeting page of a dialogue, and the drag-to-reorder of priorities on the list."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect
from pydantic import ValidationError

from dialogues import services
from dialogues.access import dialogue_for, site_for
from dialogues.flow.cards import STANDARD_ATTRIBUTES
from dialogues.targeting_forms import AudienceRows, TargetingForm
from marketo_sync.models import SyncSettings


@login_required
def targeting(request, site_id, dialogue_id):
    """Pages, behaviour trigger, schedule and audience of one dialogue. Add/remove buttons
    redisplay the form (the fragment alone for htmx) without saving; Save stores it all or,
    on any error, nothing."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    if request.method == "POST":
        form = TargetingForm(request.POST)
        audience = AudienceRows.from_post(request.POST)
        if audience.apply_button(request.POST):
            return _render(request, site, dialogue, form, audience)
        groups = audience.cleaned()
        if form.is_valid() and audience.valid:
            data = form.cleaned_data
            try:
                services.update_targeting(
                    dialogue_id=dialogue.pk,
                    targeting={
                        "include_urls": data["include_urls"],
                        "exclude_urls": data["exclude_urls"],
                        "audience_match": data["audience_match"],
                        "audience": groups,
                        "starts_at": data["starts_at"],
                        "ends_at": data["ends_at"],
                    },
                    trigger=data["trigger"],
                )
            except ValidationError as exc:
                form.add_error(None, "; ".join(str(e["msg"]) for e in exc.errors()))
            else:
                messages.success(request, f"Targeting of “{dialogue.name}” saved.")
                url = reverse("dialogues:targeting", args=[site.pk, dialogue.pk])
                # htmx would swap the whole page into the form: have it load the page instead.
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        return _render(request, site, dialogue, form, audience, status=400)
    form = TargetingForm(initial=TargetingForm.initial_for(dialogue))
    return _render(request, site, dialogue, form, AudienceRows.from_targeting(dialogue.targeting))


def _render(request, site, dialogue, form, audience, *, status=200):
    sync = SyncSettings.load()
    context = {
        "site": site,
        "dialogue": dialogue,
        "form": form,
        "audience": audience,
        # Suggestions for the field boxes: what the sync picks and what the chat captures.
        "person_fields": sorted({*STANDARD_ATTRIBUTES, *sync.person_fields}),
        "company_fields": sorted({"company", *sync.company_fields}),
    }
    template = "dialogues/_targeting_form.html" if request.htmx else "dialogues/targeting.html"
    return render(request, template, context, status=status)


@login_required
@require_POST
def reorder(request, site_id):
    """Set the priorities from the list's order (drag and drop, or the move buttons).

    Takes `order`: the dialogue ids, highest priority first, as JSON or repeated form fields.
    """
    site = site_for(request.user, site_id)
    order = request.POST.getlist("order")
    try:
        if request.content_type == "application/json":
            order = json.loads(request.body)["order"]
        ids = [int(pk) for pk in order]
        services.reorder_priorities(site=site, dialogue_ids=ids)
    except (ValueError, KeyError, TypeError):
        message = "The list changed meanwhile; reload the page and try again."
        if request.htmx or request.content_type == "application/json":
            return JsonResponse({"error": {"code": "stale_order", "message": message}}, status=409)
        messages.error(request, message)
        return redirect("dialogues:list", site.pk)
    if request.htmx or request.content_type == "application/json":
        return JsonResponse({"order": ids})
    messages.success(request, "Priorities saved.")
    return redirect("dialogues:list", site.pk)
