from django.urls import path

from dialogues import views

app_name = "dialogues"
urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_id>/dialogues/", views.dialogue_list, name="list"),
]
