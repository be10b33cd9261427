from django.urls import path  # noqa: F401 - the routing pages' paths are added here

app_name = "routing"
urlpatterns: list = []
