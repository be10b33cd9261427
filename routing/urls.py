from django.urls import path

from routing import views

app_name = "routing"
_SITE = "sites/<int:site_id>/routing/"
urlpatterns = [
    # The queue and the fallback message.
    path(_SITE, views.queue, name="queue"),
    path(f"{_SITE}order/", views.queue_order, name="queue_order"),
    path(f"{_SITE}queue/add/", views.queue_add, name="queue_add"),
    path(f"{_SITE}queue/<int:member_id>/pause/", views.queue_pause, name="queue_pause"),
    path(f"{_SITE}queue/<int:member_id>/remove/", views.queue_remove, name="queue_remove"),
    path(f"{_SITE}fallback/", views.fallback, name="fallback"),
    # Account routing.
    path(f"{_SITE}accounts/", views.accounts, name="accounts"),
    path(f"{_SITE}accounts/upload/", views.accounts_upload, name="accounts_upload"),
    path(f"{_SITE}accounts/download/", views.accounts_download, name="accounts_download"),
    path(f"{_SITE}accounts/<int:account_id>/delete/", views.account_delete, name="account_delete"),
    # Custom rules.
    path(f"{_SITE}rules/", views.rules, name="rules"),
    path(f"{_SITE}rules/new/", views.rule_new, name="rule_new"),
    path(f"{_SITE}rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path(f"{_SITE}rules/<int:rule_id>/move/", views.rule_move, name="rule_move"),
    path(f"{_SITE}rules/<int:rule_id>/active/", views.rule_active, name="rule_active"),
    path(f"{_SITE}rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
]
