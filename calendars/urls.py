from django.urls import path

from calendars import views

app_name = "calendars"
# The signed-in agent's own pages (mounted at /calendar/): no URL names another agent.
urlpatterns = [
    path("", views.calendar_settings, name="settings"),
    path("preview/", views.preview, name="preview"),
    path("connect/<str:provider_name>/", views.connect, name="connect"),
    path("callback/<str:provider_name>/", views.callback, name="callback"),
    path("disconnect/", views.disconnect, name="disconnect"),
]
