"""The preview API: the widget API's paths under /preview/, keyed by a signed preview key."""

from django.urls import path

from dialogues import preview_views as views

app_name = "preview_api"
urlpatterns = [
    path("api/widget/v1/sites/<str:key>/sessions", views.sessions, name="sessions"),
    path("api/widget/v1/sites/<str:key>/conversations", views.conversations, name="conversations"),
    path(
        "api/widget/v1/sites/<str:key>/conversations/<str:conversation_id>",
        views.conversation_detail,
        name="conversation",
    ),
    path(
        "api/widget/v1/sites/<str:key>/conversations/<str:conversation_id>/answers",
        views.answers,
        name="answers",
    ),
    path(
        "api/widget/v1/sites/<str:key>/conversations/<str:conversation_id>/slots",
        views.slots,
        name="slots",
    ),
    path(
        "api/widget/v1/sites/<str:key>/conversations/<str:conversation_id>/bookings",
        views.bookings,
        name="bookings",
    ),
    path("api/widget/v1/sites/<str:key>/visitors/identify", views.identify, name="identify"),
]
