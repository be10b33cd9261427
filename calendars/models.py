"""Agents' calendars and the hours they take meetings."""

from django.conf import settings
from django.db import models

from calendars.fields import EncryptedTextField


class CalendarConnection(models.Model):
    """The one calendar an agent's meetings go to and whose busy times they are offered around.

    Credentials are encrypted at rest (calendars.crypto). A worker that refreshes them holds this
    row's lock (select_for_update) for the refresh, so two workers never overwrite each other's
    refresh token.
    """

    class Provider(models.TextChoices):
        BUILTIN = "builtin", "DynChat calendar"
        GOOGLE = "google", "Google Calendar"
        MICROSOFT = "microsoft", "Outlook / Microsoft 365"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        # The grant was revoked or expired: the agent is out of booking until they reconnect.
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnecting"

    class FreeBusyApi(models.TextChoices):
        # Microsoft: getSchedule does not work for personal accounts; calendarView does.
        GET_SCHEDULE = "getSchedule"
        CALENDAR_VIEW = "calendarView"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_connection"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    # The provider account's address (the organiser of the meetings), from the sign-in.
    account_email = models.CharField(max_length=254, blank=True)
    # Google: the long-lived refresh token, and the short-lived access token with its expiry.
    refresh_token = EncryptedTextField(blank=True)
    access_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    # Microsoft: MSAL's serialised token cache for this account (tokens included).
    token_cache = EncryptedTextField(blank=True)
    free_busy_api = models.CharField(
        max_length=20, choices=FreeBusyApi.choices, default=FreeBusyApi.GET_SCHEDULE
    )
    # Whether to ask the provider for a Google Meet / Teams link on new meetings.
    add_video_link = models.BooleanField(default=True)
    last_error = models.TextField(blank=True)
    needs_reconnect_since = models.DateTimeField(null=True, blank=True)
    # The "please reconnect" email goes out once per break, not once per failed call.
    reconnect_email_sent_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_provider_display()} for {self.user}"

    @property
    def bookable(self) -> bool:
        return self.status == self.Status.CONNECTED


# The encrypted columns of CalendarConnection: defer them where only the status is needed, so
# nothing is decrypted for nothing.
CREDENTIAL_FIELDS = ("refresh_token", "access_token", "token_cache")


class OAuthAttempt(models.Model):
    """An authorisation under way: what the callback needs to finish it, kept server-side.

    Google: the PKCE code verifier. Microsoft: MSAL's auth-code flow dict (state, PKCE verifier,
    nonce). Keyed by the OAuth `state`, bound to the user who started it, short-lived.
    """

    state = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=20, choices=CalendarConnection.Provider.choices)
    secret = EncryptedTextField()  # JSON: the verifier or the MSAL flow
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.provider} sign-in by {self.user}"


def default_weekly_hours() -> dict:
    """Monday to Friday, 9:00-12:00 and 13:00-17:00. Keys are ISO weekdays, 1 = Monday."""
    return {str(day): [["09:00", "12:00"], ["13:00", "17:00"]] for day in range(1, 6)}


class Availability(models.Model):
    """When an agent takes meetings, as wall-clock hours in their own time zone.

    Stored as local times plus an IANA zone and expanded per date (calendars.slots), so a rule
    keeps meaning "9:00 in Berlin" across daylight-saving changes.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    # {"1": [["09:00", "12:00"], ["13:00", "17:00"]], ...}: ISO weekday -> blocks, end exclusive.
    weekly_hours = models.JSONField(default=default_weekly_hours)
    # {"2026-12-24": [] (day off), "2026-12-27": [["10:00", "12:00"]] (extra hours)}: a date
    # listed here replaces that day's weekly hours.
    date_overrides = models.JSONField(default=dict, blank=True)
    meeting_minutes = models.PositiveSmallIntegerField(default=30)
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0)
    buffer_after_minutes = models.PositiveSmallIntegerField(default=0)
    # Marketo learnt to default to 24 hours: less leaves agents no time to prepare.
    minimum_notice_minutes = models.PositiveIntegerField(default=24 * 60)
    booking_horizon_days = models.PositiveSmallIntegerField(default=14)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "availabilities"

    def __str__(self) -> str:
        return f"availability of {self.user}"
