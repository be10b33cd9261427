"""The routing pages of a site, for its marketing admins: the queue (order, pause, remove, add,
the fallback message), account routing (entries, CSV upload and download) and custom rules.
Everyone else gets a 404 (dialogues.access.site_for)."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from dialogues.access import ADMIN_ONLY, site_for
from dialogues.flow.cards import STANDARD_ATTRIBUTES
from marketo_sync.models import SyncSettings
from routing import accounts_csv, routes, selectors, services
from routing.forms import (
    AccountForm,
    FallbackForm,
    RuleConditions,
    RuleForm,
    UploadForm,
    agent_label,
)
from routing.models import AccountOwner, QueueMember, RoutingRule

ACCOUNTS_PER_PAGE = 50
# Row problems shown after an upload; a file with more says how many more there are.
MAX_ROW_ERRORS_SHOWN = 200
STALE = "The queue changed meanwhile; reload the page and try again."


def _admin_site(request, site_id):
    return site_for(request.user, site_id, roles=ADMIN_ONLY)


def _flag(request, name) -> bool | None:
    """A posted "1"/"0" as True/False; None for anything else."""
    return {"1": True, "0": False}.get(request.POST.get(name, ""))


# --- The queue ----------------------------------------------------------------------------------


@login_required
def queue(request, site_id):
    """The site's agents in queue order with their calendar state, who is next, the agents not
    in the queue, and the fallback message. htmx requests get the queue table alone."""
    site = _admin_site(request, site_id)
    return _render_queue(request, site, FallbackForm(initial=_fallback_initial(site)))


def _fallback_initial(site) -> dict:
    return {"fallback_message": selectors.fallback_message(site)}


def _render_queue(request, site, fallback_form, *, status=200):
    members = selectors.queue(site)
    ids = [member.user_id for member in members]
    for index, member in enumerate(members):
        member.order_up = _moved(ids, index, index - 1)
        member.order_down = _moved(ids, index, index + 1)
    next_agent = routes.next_up(site)
    context = {
        "site": site,
        "members": members,
        "order": ids,
        "next_up": agent_label(next_agent) if next_agent else "",
        "outside": selectors.agents_outside_queue(site),
        "fallback_form": fallback_form,
    }
    if request.htmx and request.method == "GET":
        return render(request, "routing/_queue_table.html", context)
    return render(request, "routing/queue.html", context, status=status)


def _moved(ids: list[int], index: int, to: int) -> list[int] | None:
    """The order with the item at `index` moved to `to`; None when it cannot move there."""
    if not 0 <= to < len(ids):
        return None
    order = list(ids)
    order.insert(to, order.pop(index))
    return order


@login_required
@require_POST
def queue_order(request, site_id):
    """Save the queue's order (drag and drop, or the arrows).

    Takes `order` (the agents' user ids, first first) and `expected` (the order the page
    showed), as JSON or repeated form fields. A stale page gets 409 (JSON) or a message, and
    nothing changes."""
    site = _admin_site(request, site_id)
    wants_json = request.htmx or request.content_type == "application/json"
    try:
        if request.content_type == "application/json":
            body = json.loads(request.body)
            order, expected = body["order"], body["expected"]
        else:
            order, expected = request.POST.getlist("order"), request.POST.getlist("expected")
        services.reorder_queue(
            site=site,
            user_ids=[int(pk) for pk in order],
            expected=[int(pk) for pk in expected],
        )
    except (ValueError, KeyError, TypeError):  # StaleOrder is a ValueError
        if wants_json:
            return JsonResponse({"error": {"code": "stale_order", "message": STALE}}, status=409)
        messages.error(request, STALE)
        return redirect("routing:queue", site.pk)
    if wants_json:
        return JsonResponse({"order": [int(pk) for pk in order]})
    messages.success(request, "Queue order saved.")
    return redirect("routing:queue", site.pk)


@login_required
@require_POST
def queue_pause(request, site_id, member_id):
    site = _admin_site(request, site_id)
    get_object_or_404(QueueMember, pk=member_id, site=site)  # another site's: 404 whatever is sent
    paused = _flag(request, "paused")
    if paused is None:
        messages.error(request, "Say whether to pause or resume.")
        return redirect("routing:queue", site.pk)
    try:
        member = services.set_paused(site=site, member_id=member_id, paused=paused)
    except QueueMember.DoesNotExist:
        raise Http404("No such place in this queue.") from None
    state = "paused: they get no meetings until resumed" if paused else "back in turn"
    messages.success(request, f"{agent_label(member.user)} is {state}.")
    return redirect("routing:queue", site.pk)


@login_required
@require_POST
def queue_remove(request, site_id, member_id):
    site = _admin_site(request, site_id)
    try:
        member = services.remove_from_queue(site=site, member_id=member_id)
    except QueueMember.DoesNotExist:
        raise Http404("No such place in this queue.") from None
    messages.success(request, f"{agent_label(member.user)} is out of the queue.")
    return redirect("routing:queue", site.pk)


@login_required
@require_POST
def queue_add(request, site_id):
    site = _admin_site(request, site_id)
    try:
        member = services.add_to_queue(site=site, user_id=int(request.POST.get("user", "")))
    except ValueError as refused:  # RoutingRefused, or a user id that is not a number
        text = str(refused) if isinstance(refused, services.RoutingRefused) else "Choose an agent."
        messages.error(request, text)
    else:
        messages.success(request, f"{agent_label(member.user)} joined the end of the queue.")
    return redirect("routing:queue", site.pk)


@login_required
@require_POST
def fallback(request, site_id):
    site = _admin_site(request, site_id)
    form = FallbackForm(request.POST)
    if form.is_valid():
        try:
            services.save_fallback_message(site=site, message=form.cleaned_data["fallback_message"])
        except services.RoutingRefused as refused:
            form.add_error("fallback_message", str(refused))
        else:
            messages.success(request, "Fallback message saved.")
            return redirect("routing:queue", site.pk)
    return _render_queue(request, site, form, status=400)


# --- Account routing ----------------------------------------------------------------------------


@login_required
def accounts(request, site_id):
    """The site's account entries (searched, paged), the form to add one, the CSV upload and
    download. A POST adds one entry."""
    site = _admin_site(request, site_id)
    form = AccountForm(site=site)
    if request.method == "POST":
        form = AccountForm(request.POST, site=site)
        if form.is_valid():
            data = form.cleaned_data
            try:
                account = services.save_account_owner(
                    site=site,
                    company_name=data["company_name"],
                    domain=data["domain"],
                    owner=data["owner"],
                )
            except services.RoutingRefused as refused:
                form.add_error(None, str(refused))
            else:
                name = account.company_name or account.domain
                messages.success(request, f"{name} now goes to {agent_label(account.owner)}.")
                return redirect("routing:accounts", site.pk)
        return _render_accounts(request, site, form=form, status=400)
    return _render_accounts(request, site, form=form)


def _render_accounts(request, site, *, form=None, upload_form=None, row_errors=None, status=200):
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(selectors.account_owners(site, query=query), ACCOUNTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    row_errors = row_errors or []
    context = {
        "site": site,
        "query": query,
        "page": page,
        "form": form or AccountForm(site=site),
        "upload_form": upload_form or UploadForm(),
        "row_errors": row_errors[:MAX_ROW_ERRORS_SHOWN],
        "more_row_errors": max(len(row_errors) - MAX_ROW_ERRORS_SHOWN, 0),
        "has_agents": selectors.site_agents(site).exists(),
    }
    return render(request, "routing/accounts.html", context, status=status)


def _back_to_accounts(site, data) -> str:
    # Back to the page and search the admin was on.
    params = {k: data[k][:100] for k in ("q", "page") if data.get(k)}
    url = reverse("routing:accounts", args=[site.pk])
    return f"{url}?{urlencode(params)}" if params else url


@login_required
@require_POST
def account_delete(request, site_id, account_id):
    site = _admin_site(request, site_id)
    try:
        account = services.delete_account_owner(site=site, account_id=account_id)
    except AccountOwner.DoesNotExist:
        raise Http404("No such account entry.") from None
    messages.success(request, f"{account.company_name or account.domain} removed.")
    return redirect(_back_to_accounts(site, request.POST))


@login_required
@require_POST
def accounts_upload(request, site_id):
    """Import a CSV of accounts: every row checked; any problem imports nothing and lists each
    row's problems; otherwise all rows are added or updated in one transaction."""
    site = _admin_site(request, site_id)
    form = UploadForm(request.POST, request.FILES)
    row_errors = []
    if form.is_valid():
        data = form.cleaned_data["file"].read(accounts_csv.MAX_BYTES + 1)
        try:
            read = accounts_csv.read_accounts(data)
        except accounts_csv.FileRefused as refused:
            form.add_error("file", str(refused))
        else:
            row_errors = list(read.errors)
            if row_errors:
                # Show the owners' problems of the other rows too, so one round fixes all.
                row_errors += selectors.resolve_owners(site=site, rows=read.rows)[1]
                row_errors.sort(key=lambda e: (e.row, e.column))
            else:
                try:
                    counts = services.import_account_owners(site=site, rows=read.rows)
                except services.AccountImportRefused as refused:
                    row_errors = refused.errors
                else:
                    messages.success(
                        request,
                        f"Account list imported: {counts.added} added, {counts.updated} "
                        f"updated, {counts.unchanged} unchanged.",
                    )
                    return redirect("routing:accounts", site.pk)
    return _render_accounts(request, site, upload_form=form, row_errors=row_errors, status=400)


@login_required
@require_GET
def accounts_download(request, site_id):
    site = _admin_site(request, site_id)
    body = accounts_csv.write_accounts(selectors.account_rows(site))
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    filename = f"accounts-{slugify(site.name) or site.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Custom rules -------------------------------------------------------------------------------


@login_required
def rules(request, site_id):
    site = _admin_site(request, site_id)
    rule_list = selectors.rules(site)
    operators = dict(RuleConditions.operators)
    sources = dict(RuleConditions.sources)
    for rule in rule_list:
        rule.summary = [_describe(condition, sources, operators) for condition in rule.conditions]
        rule.agent_names = [agent_label(agent) for agent in rule.agents.all()]
    return render(request, "routing/rules.html", {"site": site, "rules": rule_list})


def _describe(condition: dict, sources: dict, operators: dict) -> str:
    source, _, field = condition["subject"].partition(".")
    value = condition.get("value", "")
    if isinstance(value, list):
        value = ", ".join(value)
    text = f"{sources.get(source, source)} {field} {operators.get(condition['operator'], '?')}"
    return f"{text} {value}" if value else text


@login_required
def rule_new(request, site_id):
    site = _admin_site(request, site_id)
    return _rule_form(request, site, None)


@login_required
def rule_edit(request, site_id, rule_id):
    site = _admin_site(request, site_id)
    rule = RoutingRule.objects.filter(pk=rule_id, site=site).first()
    if rule is None:
        raise Http404("No such rule.")
    return _rule_form(request, site, rule)


def _rule_form(request, site, rule):
    """Create or change a rule. Add/remove condition buttons redisplay the form unsaved; Save
    stores everything or, on any error, nothing."""
    if request.method != "POST":
        form = RuleForm(site=site, rule=rule, initial=RuleForm.initial_for(rule) if rule else None)
        return _render_rule(request, site, rule, form, RuleConditions.from_rule(rule))
    conditions = RuleConditions.from_post(request.POST)
    if conditions.apply_button(request.POST):
        # Redisplayed as typed, without error messages: nothing was meant to be saved yet.
        initial = {
            "name": request.POST.get("name", ""),
            "description": request.POST.get("description", ""),
            "match": request.POST.get("match", "all"),
            "agents": request.POST.getlist("agents"),
        }
        form = RuleForm(site=site, rule=rule, initial=initial)
        return _render_rule(request, site, rule, form, conditions)
    form = RuleForm(request.POST, site=site, rule=rule)
    cleaned_conditions = conditions.cleaned()
    if form.is_valid() and conditions.valid:
        data = form.cleaned_data
        try:
            saved = services.save_rule(
                site=site,
                rule_id=rule.pk if rule else None,
                name=data["name"],
                description=data["description"],
                match=data["match"],
                conditions=cleaned_conditions,
                agent_ids=[agent.pk for agent in data["agents"]],
            )
        except services.RoutingRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, f"Rule “{saved.name}” saved.")
            return redirect("routing:rules", site.pk)
    return _render_rule(request, site, rule, form, conditions, status=400)


def _render_rule(request, site, rule, form, conditions, *, status=200):
    sync = SyncSettings.load()
    context = {
        "site": site,
        "rule": rule,
        "form": form,
        "conditions": conditions,
        "has_agents": selectors.site_agents(site).exists(),
        # Suggestions for the field boxes: what the sync picks and what the chat captures.
        "person_fields": sorted({*STANDARD_ATTRIBUTES, *sync.person_fields}),
        "company_fields": sorted({"company", *sync.company_fields}),
    }
    return render(request, "routing/rule_form.html", context, status=status)


@login_required
@require_POST
def rule_move(request, site_id, rule_id):
    site = _admin_site(request, site_id)
    get_object_or_404(RoutingRule, pk=rule_id, site=site)  # another site's: 404 whatever is sent
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if offset is None:
        messages.error(request, "Say whether to move the rule up or down.")
        return redirect("routing:rules", site.pk)
    try:
        services.move_rule(site=site, rule_id=rule_id, offset=offset)
    except RoutingRule.DoesNotExist:
        raise Http404("No such rule.") from None
    return redirect("routing:rules", site.pk)


@login_required
@require_POST
def rule_active(request, site_id, rule_id):
    site = _admin_site(request, site_id)
    get_object_or_404(RoutingRule, pk=rule_id, site=site)  # another site's: 404 whatever is sent
    active = _flag(request, "active")
    if active is None:
        messages.error(request, "Say whether to switch the rule on or off.")
        return redirect("routing:rules", site.pk)
    try:
        rule = services.set_rule_active(site=site, rule_id=rule_id, active=active)
    except RoutingRule.DoesNotExist:
        raise Http404("No such rule.") from None
    except services.RoutingRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"“{rule.name}” is {'on' if active else 'off'}.")
    return redirect("routing:rules", site.pk)


@login_required
@require_POST
def rule_delete(request, site_id, rule_id):
    site = _admin_site(request, site_id)
    try:
        rule = services.delete_rule(site=site, rule_id=rule_id)
    except RoutingRule.DoesNotExist:
        raise Http404("No such rule.") from None
    messages.success(request, f"Rule “{rule.name}” deleted.")
    return redirect("routing:rules", site.pk)
