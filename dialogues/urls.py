from django.urls import path

from dialogues import (
    conversation_views,
    editor_views,
    member_views,
    preview_views,
    site_views,
    targeting_views,
    views,
)

app_name = "dialogues"
_EDIT = "sites/<int:site_id>/dialogues/<int:dialogue_id>/edit/"
urlpatterns = [
    path("", views.home, name="home"),
    path("sites/<int:site_id>/dialogues/", views.dialogue_list, name="list"),
    path("sites/<int:site_id>/branding/", site_views.branding, name="branding"),
    path("sites/<int:site_id>/settings/", site_views.site_settings, name="site_settings"),
    path("sites/<int:site_id>/install/", site_views.install, name="install"),
    path("sites/<int:site_id>/dialogues/new/", views.new_dialogue, name="new"),
    path("sites/<int:site_id>/members/", member_views.members, name="members"),
    path(
        "sites/<int:site_id>/members/<int:membership_id>/role/",
        member_views.change_role,
        name="member_role",
    ),
    path(
        "sites/<int:site_id>/members/<int:membership_id>/remove/",
        member_views.remove,
        name="member_remove",
    ),
    path(
        "sites/<int:site_id>/conversations/<uuid:conversation_id>/",
        conversation_views.conversation,
        name="conversation",
    ),
    path("sites/<int:site_id>/dialogues/order/", targeting_views.reorder, name="reorder"),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/preview/",
        preview_views.preview_panel,
        name="preview",
    ),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/preview/frame/",
        preview_views.preview_frame,
        name="preview_frame",
    ),
    path(
        "sites/<int:site_id>/dialogues/<int:dialogue_id>/targeting/",
        targeting_views.targeting,
        name="targeting",
    ),
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
