from django.urls import path

from meetings import views

app_name = "meetings"
urlpatterns = [
    path("sites/<int:site_id>/invitation/", views.invitation, name="invitation"),
]
