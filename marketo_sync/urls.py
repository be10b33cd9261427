from django.urls import path

from marketo_sync import views

app_name = "marketo_sync"
urlpatterns = [
    path("", views.status, name="status"),
    path("sync/", views.start_sync, name="start"),
    path("settings/", views.sync_settings, name="settings"),
    path("settings/test/", views.test_connection, name="test_connection"),
]
