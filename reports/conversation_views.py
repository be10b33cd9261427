"""A site's conversations: every conversation kept (newest first, 50 a page), with its outcomes,
filters (visitor email, dialogue, outcome, dates), htmx updates and a CSV export; each row
links to the conversation's own page (dialogues.conversation_views) with its transcript.

For the site's marketing admins and marketing users (dialogues.access.site_for); anyone else,
agents included, gets a 404. Times and the date filters are in the viewer's zone, which
dynchat.timezones made the current one. Everything a visitor sent (their email, the page
address) is auto-escaped text.
"""

from datetime import UTC

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from dialogues.access import site_for
from dialogues.models import Dialogue, Site
from dynchat.querystrings import export_refused, query_without_page
from marketo_sync.writeback import transcript_url
from reports import conversations as selectors
from reports.conversations import ConversationFilters, Outcome
from reports.csv import csv_response
from reports.rollup import page_key
from widget.models import Conversation


class ConversationFilterForm(forms.Form):
    """The list's filters, read from the query string. Invalid fields are reported and left
    out; the valid ones still apply (`filters()`)."""

    email = forms.CharField(
        label="Visitor email",
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "ann@ or ann@bigco.com"}),
    )
    dialogue = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any dialogue")
    outcome = forms.ChoiceField(required=False, choices=Outcome.choices)
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, *, site: Site):
        super().__init__(data)
        self.fields["dialogue"].queryset = Dialogue.objects.filter(site=site).order_by("name")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            self.add_error("end", "The end date must not be before the start date.")
        return cleaned

    def filters(self) -> ConversationFilters:
        """The valid filters (call after is_valid()); fields with errors count as unset."""
        data = getattr(self, "cleaned_data", {})
        dialogue = data.get("dialogue")
        return ConversationFilters(
            email=data.get("email", ""),
            dialogue_id=dialogue.pk if dialogue else None,
            outcome=data.get("outcome", Outcome.ANY),
            date_from=data.get("start"),
            date_to=data.get("end"),
        )


def _filtered(request, site: Site) -> tuple[ConversationFilterForm, ConversationFilters]:
    form = ConversationFilterForm(request.GET, site=site)
    form.is_valid()
    return form, form.filters()


def badges(conversation) -> list[str]:
    """What the row says happened, in words (the conversation is annotated by the selector and
    carries its `goals`)."""
    done = conversation.status == Conversation.Status.COMPLETED
    shown = ["Completed" if done else "Open"]
    if conversation.email_captured:
        shown.append("Email captured")
    shown += [f"Goal reached: {name}" for name in conversation.goals]
    if conversation.meeting_booked:
        shown.append("Meeting booked")
    if conversation.nobody_free:
        shown.append("Nobody free")
    return shown


@require_GET
@login_required
def conversation_list(request, site_id):
    """The site's conversations, filtered, 50 a page. htmx requests (a filter changed, another
    page) get the results fragment alone."""
    site = site_for(request.user, site_id)
    form, filters = _filtered(request, site)
    zone = timezone.get_current_timezone()
    conversations = selectors.conversations_for(site, filters=filters, zone=zone)
    page = Paginator(conversations, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(selectors.with_goals(page.object_list))
    for conversation in rows:
        conversation.badges = badges(conversation)
        conversation.page = page_key(conversation.page_url)
    page.object_list = rows
    context = {
        "site": site,
        "form": form,
        "page": page,
        "query": query_without_page(request),
        "filtered": any(request.GET.get(name) for name in form.fields),
        "retention_days": settings.RETENTION_DAYS,
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "reports/_conversation_results.html", context)
    else:
        response = render(request, "reports/conversations.html", context)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


CSV_HEADER = [
    "conversation_id",
    "started",
    "started_utc",
    "dialogue",
    "version",
    "visitor_email",
    "page",
    "page_url",
    "status",
    "email_captured",
    "goals",
    "meeting_booked",
    "nobody_free",
    "transcript_url",
]


def _csv_rows(conversations, zone):
    for conversation in selectors.with_goals(conversations):
        yield [
            conversation.pk,
            conversation.started_at.astimezone(zone),
            conversation.started_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            conversation.dialogue.name,
            conversation.version.number,
            conversation.visitor.email,
            page_key(conversation.page_url),
            conversation.page_url,
            conversation.status,
            conversation.email_captured,
            "; ".join(conversation.goals),
            conversation.meeting_booked,
            conversation.nobody_free,
            transcript_url(conversation),
        ]


@require_GET
@login_required
def conversation_export(request, site_id):
    """The list's conversations under the same filters, as CSV (every page), streamed. Filters
    that do not validate are refused (400) rather than exporting something else than asked."""
    site = site_for(request.user, site_id)
    form, filters = _filtered(request, site)
    if refused := export_refused(form):
        return refused
    zone = timezone.get_current_timezone()
    conversations = selectors.conversations_for(site, filters=filters, zone=zone)
    name = slugify(site.name) or f"site-{site.pk}"
    today = timezone.now().astimezone(zone).date().isoformat()
    return csv_response(
        f"conversations-{name}-{today}.csv",
        CSV_HEADER,
        _csv_rows(conversations.iterator(chunk_size=500), zone),
    )
