from django.urls import path

from dialogues import views

app_name = "dialogues"
urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_id>/dialogues/", views.dialogue_list, name="list"),
    path("sites/<int:site_id>/dialogues/new/", views.new_dialogue, name="new"),
    path("sites/<int:site_id>/dialogues/<int:dialogue_id>/", views.dialogue_detail, name="detail"),
    path("sites/<int:site_id>/dialogues/<int:dialogue_id>/publish/", views.publish, name="publish"),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/unpublish/",
        views.unpublish,
        name="unpublish",
    ),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/versions/<int:version_id>/restore/",
        views.restore,
        name="restore",
    ),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/duplicate/",
        views.duplicate_dialogue,
        name="duplicate",
    ),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/archive/",
        views.archive_dialogue,
        name="archive",
    ),
]
