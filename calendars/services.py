"""Writes to calendar connections and OAuth attempts."""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calendars.models import CalendarConnection, OAuthAttempt
from routing import services as routing

log = logging.getLogger(__name__)


def mark_needs_reconnect(connection_id: int, reason: str) -> None:
    """The grant is gone: take the agent out of booking and, once per break, email them.

    Safe to call from many workers at once: the row lock makes exactly one of them send the
    email, and the mail goes out only after the status change is committed.
    """
    with transaction.atomic():
        connection = (
            CalendarConnection.objects.select_for_update()
            .select_related("user")
            .filter(pk=connection_id)
            .first()
        )
        if connection is None:
            return
        now = timezone.now()
        fields = ["last_error", "updated_at"]
        connection.last_error = reason[:2000]
        if connection.status != CalendarConnection.Status.NEEDS_RECONNECT:
            connection.status = CalendarConnection.Status.NEEDS_RECONNECT
            connection.needs_reconnect_since = now
            fields += ["status", "needs_reconnect_since"]
        notify = connection.reconnect_email_sent_at is None and bool(connection.user.email)
        if notify:
            connection.reconnect_email_sent_at = now
            fields.append("reconnect_email_sent_at")
        connection.save(update_fields=fields)
        log.warning("calendar %s needs reconnecting: %s", connection_id, reason)
        if notify:
            user = connection.user
            provider_name = connection.get_provider_display()
            transaction.on_commit(lambda: _send_reconnect_email(user, provider_name))


def _send_reconnect_email(user, provider_name: str) -> None:
    url = settings.SITE_ROOT.rstrip("/") + reverse("calendars:settings")
    send_mail(
        subject=f"Reconnect your {provider_name} to keep taking meetings",
        message=(
            f"Hi {user.first_name or user.username},\n\n"
            f"DynChat can no longer reach your {provider_name}: access was revoked or has "
            "expired. Until you reconnect it, visitors cannot book meetings with you.\n\n"
            f"Reconnect it here: {url}\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


@transaction.atomic
def save_connection(
    user, provider: str, *, account_email: str, **credentials
) -> CalendarConnection:
    """Create or replace `user`'s calendar after a successful sign-in (or a switch to the
    built-in calendar). A reconnect clears the "needs reconnecting" state, so the agent is back
    in booking at once and the next break emails them again.

    `credentials`: refresh_token, access_token, access_token_expires_at, scopes (Google) or
    token_cache (Microsoft); anything not given is emptied, so no stale token of another
    provider survives a switch.
    """
    now = timezone.now()
    defaults = {
        "provider": provider,
        "status": CalendarConnection.Status.CONNECTED,
        "account_email": account_email,
        "refresh_token": "",
        "access_token": "",
        "access_token_expires_at": None,
        "scopes": [],
        "token_cache": "",
        "free_busy_api": CalendarConnection.FreeBusyApi.GET_SCHEDULE,
        "last_error": "",
        "needs_reconnect_since": None,
        "reconnect_email_sent_at": None,
        "connected_at": now,
        **credentials,
    }
    connection, _ = CalendarConnection.objects.update_or_create(user=user, defaults=defaults)
    routing.join_queues(user)
    return connection


# How long an agent has between "Connect" and the provider's redirect back.
OAUTH_ATTEMPT_LIFETIME = timedelta(minutes=10)


def start_oauth_attempt(*, user, provider: str, state: str, secret: dict) -> None:
    """Keep what the OAuth callback will need (`secret`: a PKCE verifier, MSAL's flow), keyed
    by `state` and bound to `user`. Expired attempts, anyone's, are dropped on the way."""
    OAuthAttempt.objects.filter(created_at__lt=timezone.now() - OAUTH_ATTEMPT_LIFETIME).delete()
    OAuthAttempt.objects.create(
        state=state, user=user, provider=provider, secret=json.dumps(secret)
    )


def take_oauth_attempt(*, user, provider: str, state: str) -> dict | None:
    """The secret of `user`'s attempt with this `state`, used up; None when there is none, it
    is another user's or it expired. Deleting is what claims it, so of two callbacks racing
    with one state only one gets it."""
    if not state:
        return None
    attempt = OAuthAttempt.objects.filter(state=state, user=user, provider=provider).first()
    if attempt is None or not OAuthAttempt.objects.filter(pk=attempt.pk).delete()[0]:
        return None
    if attempt.created_at < timezone.now() - OAUTH_ATTEMPT_LIFETIME:
        return None
    return json.loads(attempt.secret)
