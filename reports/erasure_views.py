"""The privacy page of a site, for its marketing admins: erase a person at their request (after
checking what that erases), look up whether an address was erased, and the site's erasure log.
Anyone else gets a 404 (dialogues.access.site_for). The erasure is reports.erasure's.

Addresses travel in POST bodies only, never in a URL (URLs end up in logs), and the page's
messages and log never show them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dialogues.access import ADMIN_ONLY, site_for
from reports import erasure
from reports.erasure_forms import EraseForm, LookupForm
from reports.models import Erasure

ERASURES_PER_PAGE = 50


@require_http_methods(["GET", "POST"])
@login_required
def privacy(request, site_id):
    """GET: the forms and the log. POST `action`: "check" shows what erasing the address
    would erase; "erase" erases it and redirects back with the counts; "lookup" says whether
    the address was erased before. Refused input re-renders the page (400), changing nothing."""
    site = site_for(request.user, site_id, roles=ADMIN_ONLY)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    erase_form, lookup_form = EraseForm(erasing=False), LookupForm()
    preview = lookup = None
    status = 200
    if action in ("check", "erase"):
        erase_form = EraseForm(request.POST, erasing=action == "erase")
        if erase_form.is_valid():
            email = erase_form.cleaned_data["email"]
            if action == "erase":
                try:
                    done = erasure.erase_person(
                        email,
                        site=site,
                        requested_by=request.user,
                        reference=erase_form.cleaned_data["reference"],
                    )
                except erasure.InvalidErasure as exc:
                    erase_form.add_error(None, str(exc))
                else:
                    messages.success(
                        request,
                        f"The person was erased from {site.name}: {erasure.describe(done.counts)}.",
                    )
                    return redirect("reports:privacy", site.pk)
            else:
                preview = erasure.erasure_preview(email, site=site)
        if erase_form.errors:
            status = 400
    elif action == "lookup":
        lookup_form = LookupForm(request.POST)
        if lookup_form.is_valid():
            lookup = erasure.was_erased(lookup_form.cleaned_data["lookup_email"], site=site)
        else:
            status = 400
    elif request.method == "POST":
        return HttpResponseBadRequest("Unknown action.")
    page = Paginator(
        Erasure.objects.filter(site=site).order_by("-created_at", "-pk"), ERASURES_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "site": site,
        "erase_form": erase_form,
        "lookup_form": lookup_form,
        "preview": preview,
        "preview_rows": _rows(preview.counts) if preview else [],
        "lookup": lookup,
        "page": page,
        "log": [(e, erasure.describe(e.counts)) for e in page],
    }
    return render(request, "reports/privacy.html", context, status=status)


def _rows(counts: dict[str, int]) -> list[tuple[str, int]]:
    return [(plural, counts.get(kind, 0)) for kind, (_, plural) in erasure.KINDS.items()]
