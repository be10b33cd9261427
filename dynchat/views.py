from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views import defaults

from dialogues.models import Site
from widget.decorators import error

DEMO_SITE_NAME = "DynChat demo site"


def demo_host_page(request):
    """A stand-in customer page that embeds the widget exactly as a customer would: the script
    comes from SITE_ROOT, which may be another origin than the one this page is opened on."""
    site = Site.objects.filter(name=DEMO_SITE_NAME).first()
    if site is None:
        raise Http404("No demo site: run `python manage.py seed_demo`.")
    return render(
        request,
        "demo/host.html",
        {"site": site, "widget_src": f"{settings.SITE_ROOT}/static/widget/dynchat.js"},
    )


def page_not_found(request, exception):
    """API clients get the API's error shape; people get the HTML page."""
    if request.path.startswith("/api/"):
        return error("not_found", "There is nothing at this address.", 404)
    return defaults.page_not_found(request, exception)
