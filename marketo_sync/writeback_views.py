"""The write-back pages: what a site's chats send to Marketo, and how that is going.

For a site's marketing admins (dialogues.access.site_for with ADMIN_ONLY), under
/sites/<id>/marketo/: the lead field mapping, the delivery status (its figures refresh
themselves with htmx), and the outbox, where parked records are retried or discarded.
For the site's marketing admins and users (dialogue_for), under a dialogue: its Marketo actions
(on engagement, a goal or a booked meeting: a program status, a campaign request with tokens)
and the button that reads programs and campaigns from Marketo again.
Anyone else gets a 404. Writes go through marketo_sync.writeback_services.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dialogues.access import ADMIN_ONLY, dialogue_for, site_for
from dynchat.querystrings import query_without_page
from marketo_sync import catalogue, writeback
from marketo_sync import writeback_selectors as selectors
from marketo_sync import writeback_services as services
from marketo_sync.errors import HINTS, MarketoError
from marketo_sync.models import DeliveryState, MarketoAction, OutboxRecord
from marketo_sync.writeback_forms import ActionForm, FieldMappingForm, OutboxFilterForm

RECORDS_PER_PAGE = 50


def _admin_site(request, site_id):
    return site_for(request.user, site_id, roles=ADMIN_ONLY)


def _configuration() -> dict:
    """Whether write-back is on, and what to do if not: every page says so."""
    return {"enabled": writeback.enabled(), "not_configured_hint": HINTS["not_configured"]}


# --- Field mapping ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def field_mapping(request, site_id):
    """Which Marketo lead field each chat attribute the site's dialogues capture updates."""
    site = _admin_site(request, site_id)
    attributes = selectors.capturable_attributes(site)
    status = 200
    if request.method == "POST":
        form = FieldMappingForm(request.POST, attributes=attributes)
        if form.is_valid():
            services.save_field_mapping(site=site, fields=form.mapping())
            messages.success(
                request,
                "Field mapping saved. Records not sent yet are sent with it.",
            )
            return redirect("writeback:field_mapping", site.pk)
        status = 400
    else:
        initial = FieldMappingForm.initial_for(attributes, selectors.field_mapping(site))
        form = FieldMappingForm(attributes=attributes, initial=initial)
    context = {
        "site": site,
        "form": form,
        "known_fields": selectors.known_marketo_fields(),
        **_configuration(),
    }
    return render(request, "marketo_sync/writeback/field_mapping.html", context, status=status)


# --- Delivery status -------------------------------------------------------------------------


@require_GET
@login_required
def delivery(request, site_id):
    """The site's records by kind and state, and how delivery as a whole is going. htmx
    requests (the figures polling themselves) get the figures alone."""
    site = _admin_site(request, site_id)
    now = timezone.now()
    counts = selectors.delivery_counts(site, now=now)
    state = DeliveryState.load()
    context = {
        "site": site,
        "counts": counts,
        "totals": selectors.totals(counts),
        "oldest_pending_at": selectors.oldest_pending_at(site),
        "state": state,
        "problem_hint": HINTS.get(state.problem_code, "") if state.problem_code else "",
        "now": now,
        **_configuration(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "marketo_sync/writeback/_delivery_status.html", context)
    else:
        response = render(request, "marketo_sync/writeback/delivery.html", context)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- The outbox ------------------------------------------------------------------------------


@require_GET
@login_required
def outbox(request, site_id):
    """The site's records of one status (parked unless asked), of one kind or all, newest
    first, 50 a page. htmx requests (a filter changed, another page) get the results alone."""
    site = _admin_site(request, site_id)
    form = OutboxFilterForm(request.GET)
    filters = form.filters()
    records = selectors.outbox_records(site, **filters)
    page = Paginator(records, RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    for record in page.object_list:
        record.summary = selectors.describe_payload(record)
    context = {
        "site": site,
        "form": form,
        "filters": filters,
        "page": page,
        "parked": selectors.parked_count(site),
        "query": query_without_page(request),
        "list_url": request.get_full_path(),
        **_configuration(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "marketo_sync/writeback/_outbox_results.html", context)
    else:
        response = render(request, "marketo_sync/writeback/outbox.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _back_to_outbox(request, site, candidate: str) -> str:
    """The outbox page a form came from (`candidate`, if it is that page of ours), else the
    parked records."""
    default = reverse("writeback:outbox", args=[site.pk])
    if candidate.startswith(default) and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _site_record(site, record_id) -> OutboxRecord:
    # Another site's record is a 404, whatever its state.
    return get_object_or_404(OutboxRecord, pk=record_id, site=site)


@require_POST
@login_required
def retry_record(request, site_id, record_id):
    site = _admin_site(request, site_id)
    record = _site_record(site, record_id)
    queued = services.retry_parked(site=site, record_ids=[record.pk])
    if not queued:
        messages.error(
            request, f"Record #{record.pk} is not parked: only parked records are retried."
        )
    elif queued == 1:
        messages.success(request, f"Record #{record.pk} will be sent again.")
    else:
        messages.success(
            request,
            f"Record #{record.pk} will be sent again, followed by {queued - 1} of the lead's "
            f"record{'s' if queued > 2 else ''} that waited for it.",
        )
    return redirect(_back_to_outbox(request, site, request.POST.get("next", "")))


@require_POST
@login_required
def retry_all(request, site_id):
    site = _admin_site(request, site_id)
    queued = services.retry_parked(site=site)
    if queued:
        messages.success(
            request, f"{queued} parked record{'s' if queued != 1 else ''} will be sent again."
        )
    else:
        messages.error(request, "No record is parked.")
    return redirect(_back_to_outbox(request, site, request.POST.get("next", "")))


@require_http_methods(["GET", "POST"])
@login_required
def discard_record(request, site_id, record_id):
    """GET asks to confirm; POST deletes the parked record (services.discard)."""
    site = _admin_site(request, site_id)
    record = _site_record(site, record_id)
    if request.method == "POST":
        try:
            services.discard(site=site, record_id=record.pk)
        except OutboxRecord.DoesNotExist:
            raise Http404("No such record.") from None
        except services.WritebackRefused as refused:
            messages.error(request, f"Record #{record.pk} was not discarded. {refused}")
        else:
            messages.success(request, f"Record #{record.pk} is discarded: it will not be sent.")
        return redirect(_back_to_outbox(request, site, request.POST.get("next", "")))
    record.summary = selectors.describe_payload(record)
    context = {
        "site": site,
        "record": record,
        "discardable": record.status == OutboxRecord.Status.PARKED,
        "back": _back_to_outbox(request, site, request.GET.get("next", "")),
    }
    return render(request, "marketo_sync/writeback/discard.html", context)


# --- A dialogue's Marketo actions ------------------------------------------------------------


def _catalogue_context() -> dict:
    programs, campaigns = selectors.catalogue_counts()
    return {
        "last_refreshed": catalogue.last_refreshed(),
        "program_count": programs,
        "campaign_count": campaigns,
    }


@require_GET
@login_required
def dialogue_actions(request, site_id, dialogue_id):
    """The dialogue's Marketo actions, and the button to read Marketo's lists again."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    actions = selectors.dialogue_actions(dialogue)
    for action in actions:
        action.token_lines = [
            (token.get("name", ""), writeback.TOKEN_VALUES.get(token.get("value"), "?"))
            for token in action.tokens
        ]
    context = {
        "site": site,
        "dialogue": dialogue,
        "actions": actions,
        **_catalogue_context(),
        **_configuration(),
    }
    return render(request, "marketo_sync/writeback/actions.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def action_new(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    return _action_form(request, site, dialogue, None)


@require_http_methods(["GET", "POST"])
@login_required
def action_edit(request, site_id, dialogue_id, action_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    action = get_object_or_404(MarketoAction, pk=action_id, dialogue=dialogue)
    return _action_form(request, site, dialogue, action)


def _action_form(request, site, dialogue, action):
    """Create or change an action: saved, or redisplayed with every problem (400)."""
    if request.method != "POST":
        initial = ActionForm.initial_for(action) if action else {"on": MarketoAction.On.GOAL}
        form = ActionForm(dialogue=dialogue, action=action, initial=initial)
        return _render_action(request, site, dialogue, action, form)
    if "show_statuses" in request.POST:
        # Without JavaScript: the program changed, its statuses are offered; nothing is saved.
        initial = {name: request.POST.get(name, "") for name in ActionForm.base_fields}
        initial.update(
            (name, value) for name, value in request.POST.items() if name.startswith("token_")
        )
        form = ActionForm(dialogue=dialogue, action=action, initial=initial)
        return _render_action(request, site, dialogue, action, form)
    form = ActionForm(request.POST, dialogue=dialogue, action=action)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.save_action(
                dialogue=dialogue,
                action_id=action.pk if action else None,
                on=data["on"],
                goal=data["goal"],
                program_id=data["program_id"],
                program_name=data["program_name"],
                program_status=data["status"],
                campaign_id=data["campaign_id"],
                campaign_name=data["campaign_name"],
                tokens=data["tokens"],
            )
        except MarketoAction.DoesNotExist:
            raise Http404("No such action.") from None
        except services.WritebackRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, "Marketo action saved.")
            return redirect("writeback:actions", site.pk, dialogue.pk)
    return _render_action(request, site, dialogue, action, form, status=400)


def _render_action(request, site, dialogue, action, form, *, status=200):
    statuses = reverse("writeback:action_statuses", args=[site.pk, dialogue.pk])
    if action is not None:
        statuses += f"?action={action.pk}"
    # A changed program brings its statuses (the view below); the select is the request's value.
    form.fields["program"].widget.attrs.update(
        {
            "hx-get": statuses,
            "hx-trigger": "change",
            "hx-target": "#status-field",
            "hx-swap": "outerHTML",
        }
    )
    context = {
        "site": site,
        "dialogue": dialogue,
        "action": action,
        "form": form,
        **_catalogue_context(),
        **_configuration(),
    }
    return render(request, "marketo_sync/writeback/action_form.html", context, status=status)


@require_GET
@login_required
def action_statuses(request, site_id, dialogue_id):
    """The status select for the program chosen (`program`): what htmx swaps in when the
    program changes. `action` keeps an edited action's status (and gone program) offered."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    action = None
    if request.GET.get("action", "").isdigit():
        action = MarketoAction.objects.filter(dialogue=dialogue, pk=request.GET["action"]).first()
    form = ActionForm(dialogue=dialogue, action=action)
    program = request.GET.get("program", "")
    form.set_program(int(program) if program.isdigit() else None)
    return render(
        request, "marketo_sync/writeback/_status_field.html", {"form": form, "site": site}
    )


@require_POST
@login_required
def action_delete(request, site_id, dialogue_id, action_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        services.delete_action(dialogue=dialogue, action_id=action_id)
    except MarketoAction.DoesNotExist:
        raise Http404("No such action.") from None
    messages.success(request, "Marketo action deleted.")
    return redirect("writeback:actions", site.pk, dialogue.pk)


@require_POST
@login_required
def refresh_lists(request, site_id, dialogue_id):
    """Read programs, their statuses and campaigns from Marketo again (catalogue.refresh)."""
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        read = catalogue.refresh()
    except MarketoError as exc:
        messages.error(request, f"The lists could not be read from Marketo: {exc.explain()}")
    else:
        messages.success(
            request,
            f"Read from Marketo: {read.programs} program{'s' if read.programs != 1 else ''} "
            f"and {read.campaigns} requestable campaign{'s' if read.campaigns != 1 else ''}.",
        )
    return redirect("writeback:actions", site.pk, dialogue.pk)
