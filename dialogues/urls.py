from django.urls import path

from dialogues import editor_views, views

app_name = "dialogues"
_EDIT = "sites/<int:site_id>/dialogues/<int:dialogue_id>/edit/"
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
    # The flow editor (dialogues/editor_views.py).
    path(_EDIT, editor_views.editor, name="editor"),
    path(f"{_EDIT}cards/add/", editor_views.add_card, name="editor_add"),
    path(f"{_EDIT}cards/<str:card_id>/", editor_views.edit_card, name="editor_card"),
    path(f"{_EDIT}cards/<str:card_id>/delete/", editor_views.delete_card, name="editor_delete"),
    path(f"{_EDIT}cards/<str:card_id>/move/", editor_views.move_card, name="editor_move"),
    path(f"{_EDIT}cards/<str:card_id>/start/", editor_views.set_start_card, name="editor_start"),
    path(f"{_EDIT}undo/", editor_views.undo_delete, name="editor_undo"),
    path(f"{_EDIT}publish/", editor_views.publish, name="editor_publish"),
]
