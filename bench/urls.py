"""The product's URLs plus /bench/bare: a JSON view that does nothing, behind the same
middleware stack, to compare the widget endpoints against."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from dynchat.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare, name="bench-bare"), *product_urlpatterns]
