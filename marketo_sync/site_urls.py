"""The write-back pages of a site (marketo_sync/writeback_views.py): its Marketo field mapping,
delivery status and outbox, and each dialogue's Marketo actions. Included at the root by
dynchat/urls.py; the installation-wide sync pages are marketo_sync/urls.py, under /marketo/."""

from django.urls import path

from marketo_sync import writeback_views as views

app_name = "writeback"
_SITE = "sites/<int:site_id>/marketo/"
_DIALOGUE = "sites/<int:site_id>/dialogues/<int:dialogue_id>/marketo/"
urlpatterns = [
    # For the site's marketing admins.
    path(_SITE, views.field_mapping, name="field_mapping"),
    path(f"{_SITE}delivery/", views.delivery, name="delivery"),
    path(f"{_SITE}outbox/", views.outbox, name="outbox"),
    path(f"{_SITE}outbox/retry/", views.retry_all, name="retry_all"),
    path(f"{_SITE}outbox/<int:record_id>/retry/", views.retry_record, name="retry"),
    path(f"{_SITE}outbox/<int:record_id>/discard/", views.discard_record, name="discard"),
    # For the site's marketing admins and users.
    path(_DIALOGUE, views.dialogue_actions, name="actions"),
    path(f"{_DIALOGUE}new/", views.action_new, name="action_new"),
    path(f"{_DIALOGUE}statuses/", views.action_statuses, name="action_statuses"),
    path(f"{_DIALOGUE}refresh/", views.refresh_lists, name="refresh_lists"),
    path(f"{_DIALOGUE}<int:action_id>/", views.action_edit, name="action_edit"),
    path(f"{_DIALOGUE}<int:action_id>/delete/", views.action_delete, name="action_delete"),
]
