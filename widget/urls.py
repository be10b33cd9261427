from django.urls import path

from widget import views

app_name = "widget"
urlpatterns = [
    path("openapi.json", views.openapi, name="openapi"),
    path("sites/<str:site_key>/sessions", views.sessions, name="sessions"),
    path("sites/<str:site_key>/conversations", views.conversations, name="conversations"),
    path(
        "sites/<str:site_key>/conversations/<str:conversation_id>",
        views.conversation_detail,
        name="conversation",
    ),
    path(
        "sites/<str:site_key>/conversations/<str:conversation_id>/answers",
        views.answers,
        name="answers",
    ),
    path(
        "sites/<str:site_key>/conversations/<str:conversation_id>/slots",
        views.slots,
        name="slots",
    ),
    path(
        "sites/<str:site_key>/conversations/<str:conversation_id>/bookings",
        views.bookings,
        name="bookings",
    ),
    path("sites/<str:site_key>/visitors/identify", views.identify, name="identify"),
    path("sites/<str:site_key>/avatar", views.avatar, name="avatar"),
]
