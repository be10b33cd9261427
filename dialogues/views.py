from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import render

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
    return render(request, "dialogues/home.html", {"sites": sites})
