"""A site's reports, its conversations and privacy (erasure) pages. Included at the root by
dynchat/urls.py."""


app_name = "reports"
_SITE = "sites/<int:site_id>/"
urlpatterns = [
    # reports.views (the dialogue report, the overall dashboard) go here.
    # reports.meeting_views (the meetings dashboard) go here.
    # reports.conversation_views (the conversations list) go here.
    # reports.erasure_views (erase a person, the erasure log) go here.
]
