"""A site's reports, its conversations and privacy (erasure) pages. Included at the root by
dynchat/urls.py."""

from django.urls import path

from reports import conversation_views, erasure_views, meeting_views, views

app_name = "reports"
_SITE = "sites/<int:site_id>/"
urlpatterns = [
    # reports.views (the dialogue report, the overall dashboard) go here.
    path(_SITE + "reports/", views.overview, name="overview"),
    path(_SITE + "dialogues/<int:dialogue_id>/report/", views.dialogue_report, name="dialogue"),
    # reports.meeting_views (the meetings dashboard) go here.
    path(_SITE + "reports/meetings/", meeting_views.meetings_dashboard, name="meetings"),
    # reports.conversation_views (the conversations list) go here.
    path(_SITE + "conversations/", conversation_views.conversation_list, name="conversations"),
    path(
        _SITE + "conversations/export.csv",
        conversation_views.conversation_export,
        name="conversations_csv",
    ),
    # reports.erasure_views (erase a person, the erasure log) go here.
    path(_SITE + "privacy/", erasure_views.privacy, name="privacy"),
]
