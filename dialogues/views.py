from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Prefetch, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_POST

from dialogues import selectors, services
from dialogues.access import MANAGE_DIALOGUES, dialogue_for, site_for
from dialogues.flow.cards import FlowInvalid
from dialogues.forms import NewDialogueForm
from dialogues.models import Dialogue, DialogueVersion, Membership, Site


@login_required
def home(request):
    """The sites the signed-in user belongs to, each with its dialogues."""
    sites = (
        Site.objects.filter(members=request.user)
        .annotate(
            # The user's role decides whether the site's dialogue pages are theirs to open.
            my_role=Subquery(
                Membership.objects.filter(site=OuterRef("pk"), user=request.user).values("role")[:1]
            )
        )
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
    return render(
        request,
        "dialogues/home.html",
        {"sites": sites, "widget_src": widget_src, "manage_roles": MANAGE_DIALOGUES},
    )


@login_required
def dialogue_list(request, site_id):
    """A site's dialogues with status, priority, last publication and headline figures;
    filtered by status and searched by name. htmx requests get the table alone."""
    site = site_for(request.user, site_id)
    return _render_list(request, site, NewDialogueForm())


def _render_list(request, site, form):
    status = request.GET.get("status", "")
    if status not in Dialogue.Status.values:
        status = ""
    query = request.GET.get("q", "").strip()[:100]
    dialogues = selectors.dialogue_list(site, status=status, query=query)
    # Priorities are reordered on the whole list only, never on a filtered part of it.
    reorderable = not status and not query and len(dialogues) > 1
    if reorderable:
        ids = [dialogue.pk for dialogue in dialogues]
        for index, dialogue in enumerate(dialogues):
            dialogue.order_up = _moved(ids, index, index - 1)
            dialogue.order_down = _moved(ids, index, index + 1)
    context = {
        "site": site,
        "dialogues": dialogues,
        "reorderable": reorderable,
        "status": status,
        "query": query,
        "statuses": Dialogue.Status.choices,
        "metrics_days": selectors.METRICS_DAYS,
        "form": form,
    }
    if request.htmx:
        return render(request, "dialogues/_dialogue_table.html", context)
    return render(request, "dialogues/dialogue_list.html", context)


def _moved(ids: list[int], index: int, to: int) -> list[int] | None:
    """The order with the item at `index` moved to `to`; None when it cannot move there."""
    if not 0 <= to < len(ids):
        return None
    order = list(ids)
    order.insert(to, order.pop(index))
    return order


@require_POST
@login_required
def new_dialogue(request, site_id):
    """Create a draft from blank or from a starter; bad input re-shows the list with errors."""
    site = site_for(request.user, site_id)
    form = NewDialogueForm(request.POST)
    if not form.is_valid():
        return _render_list(request, site, form)
    dialogue = services.create_dialogue(
        site=site, name=form.cleaned_data["name"], starter=form.cleaned_data["starter"]
    )
    messages.success(request, f"Created the draft \u201c{dialogue.name}\u201d.")
    return redirect(reverse("dialogues:list", args=[site.pk]))


@require_POST
@login_required
def duplicate_dialogue(request, site_id, dialogue_id):
    site, original = dialogue_for(request.user, site_id, dialogue_id)
    copy = services.duplicate_dialogue(dialogue_id=original.pk)
    messages.success(request, f"Created \u201c{copy.name}\u201d as a draft.")
    return redirect(reverse("dialogues:list", args=[site.pk]))


@require_POST
@login_required
def archive_dialogue(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    services.archive_dialogue(dialogue_id=dialogue.pk)
    messages.success(
        request,
        f"Archived \u201c{dialogue.name}\u201d: visitors no longer see it. "
        "Find it under the Archived status.",
    )
    return redirect(reverse("dialogues:list", args=[site.pk]))


@login_required
def dialogue_detail(request, site_id, dialogue_id):
    """One dialogue: its draft, publishing, and the history of published versions."""
    site = site_for(request.user, site_id)
    dialogue = get_object_or_404(
        Dialogue.objects.select_related("current_version"), pk=dialogue_id, site=site
    )
    return _render_detail(request, site, dialogue)


def _render_detail(request, site, dialogue, *, problems=None, status=200):
    versions = dialogue.versions.select_related("published_by").order_by("-number")
    return render(
        request,
        "dialogues/dialogue_detail.html",
        {
            "site": site,
            "dialogue": dialogue,
            "cards": (dialogue.flow or {}).get("cards", []),
            "versions": versions,
            "problems": problems,
        },
        status=status,
    )


@require_POST
@login_required
def publish(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    try:
        version = services.publish_dialogue(dialogue_id=dialogue.pk, user=request.user)
    except FlowInvalid as invalid:
        # Nothing was published: show each problem with where it is.
        return _render_detail(request, site, dialogue, problems=invalid.problems, status=400)
    messages.success(request, f"Published version {version.number}: visitors see it now.")
    return redirect(reverse("dialogues:detail", args=[site.pk, dialogue.pk]))


@require_POST
@login_required
def unpublish(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    services.unpublish_dialogue(dialogue_id=dialogue.pk)
    messages.success(request, "Unpublished: new visitors no longer see it.")
    return redirect(reverse("dialogues:detail", args=[site.pk, dialogue.pk]))


@require_POST
@login_required
def restore(request, site_id, dialogue_id, version_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    version = get_object_or_404(DialogueVersion, pk=version_id, dialogue=dialogue)
    services.restore_version(dialogue_id=dialogue.pk, version_id=version.pk)
    messages.success(
        request, f"Version {version.number} is the draft again. Publish it to make it live."
    )
    return redirect(reverse("dialogues:detail", args=[site.pk, dialogue.pk]))
