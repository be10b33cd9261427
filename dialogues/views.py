from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import render
from django.templatetags.static import static

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
