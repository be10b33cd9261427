from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dynchat import views

handler404 = "dynchat.views.page_not_found"

urlpatterns = [
    path("", include("dialogues.urls")),
    path("demo/", views.demo_host_page, name="demo"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # A new member chooses their password from the link their site's admin passed on.
    path(
        "password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("api/widget/v1/", include("widget.urls")),
    path("preview/", include("dialogues.preview_urls")),
    path("marketo/", include("marketo_sync.urls")),
    path("calendar/", include("calendars.urls")),
    path("", include("meetings.urls")),
    path("", include("routing.urls")),
    path("", include("marketo_sync.site_urls")),
    path("", include("reports.urls")),
]
