from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import render
from django.templatetags.static import static

from dialogues import selectors
from dialogues.access import site_for
from dialogues.models import Dialogue, Site


@login_required
def home(request):
    """The sites the signed-in user belongs to, each with its dialogues."""
    sites = (
        Site.objects.filter(members=request.user)
        .order_by("name")
        .prefetch_related(
            Prefetch(
                "dialogues",
                queryset=Dialogue.objects.select_related("current_version").order_by(
                    "-priority", "name"
                ),
            )
        )
    )
    widget_src = f"{settings.SITE_ROOT}{static('widget/dynchat.js')}"
    return render(request, "dialogues/home.html", {"sites": sites, "widget_src": widget_src})


@login_required
def dialogue_list(request, site_id):
    """A site's dialogues with status, priority, last publication and headline figures;
    filtered by status and searched by name. htmx requests get the table alone."""
    site = site_for(request.user, site_id)
    status = request.GET.get("status", "")
    if status not in Dialogue.Status.values:
        status = ""
    query = request.GET.get("q", "").strip()[:100]
    context = {
        "site": site,
        "dialogues": selectors.dialogue_list(site, status=status, query=query),
        "status": status,
        "query": query,
        "statuses": Dialogue.Status.choices,
        "metrics_days": selectors.METRICS_DAYS,
    }
    if request.htmx:
        return render(request, "dialogues/_dialogue_table.html", context)
    return render(request, "dialogues/dialogue_list.html", context)
