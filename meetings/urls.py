from django.urls import path

from meetings import cancel_views, list_views, views

app_name = "meetings"
urlpatterns = [
    path("sites/<int:site_id>/invitation/", views.invitation, name="invitation"),
    # The top bar's "Your meetings": an agent's site list, or which site's when they have several.
    path("meetings/", list_views.my_meetings, name="mine"),
    path("sites/<int:site_id>/meetings/", list_views.meeting_list, name="list"),
    path("sites/<int:site_id>/meetings/export.csv", list_views.meeting_export, name="export"),
    path(
        "sites/<int:site_id>/meetings/<uuid:meeting_id>/",
        list_views.meeting_detail,
        name="detail",
    ),
    path(
        "sites/<int:site_id>/meetings/<uuid:meeting_id>/outcome/",
        list_views.meeting_outcome,
        name="outcome",
    ),
    path(
        "sites/<int:site_id>/meetings/<uuid:meeting_id>/cancel/",
        list_views.meeting_cancel,
        name="cancel",
    ),
    # The visitor's cancel link, from their invitation: public, the token is the key.
    path(
        "m/<uuid:meeting_id>/cancel/<str:token>/",
        cancel_views.cancel,
        name="visitor_cancel",
    ),
]
