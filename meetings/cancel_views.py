"""The visitor's cancel page, opened from the link in their invitation.

Public, outside the marketer UI: no sign-in, the link's token (an HMAC of the meeting's id,
meetings.invitations.cancel_token) is the key, and a wrong one is a plain 404 that says
nothing about the meeting. GET only shows: mail scanners and link previews open every link in
an email, so cancelling takes the page's button (a POST, with Django's CSRF check).

POSTs are rate limited per address. A valid token cannot be guessed, and a meeting is
cancelled once, so the limit is not what keeps meetings safe; it keeps anyone from making us
check tokens and write to the database as fast as they can send requests.
"""

from django import forms
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from meetings import invitations
from meetings.cancellation import MAX_REASON_CHARS, CannotCancel, cancel_meeting
from meetings.models import Meeting
from widget import ratelimit

POSTS_PER_WINDOW = 20
WINDOW_SECONDS = 600


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=MAX_REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MAX_REASON_CHARS}),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request, meeting_id, token):
    """GET: what the meeting is and a "Cancel meeting" button, or why it cannot be cancelled.
    POST: cancel it, then show it cancelled (303 to the GET). A second POST, or one for a
    meeting already under way, changes nothing and says why."""
    if request.method == "POST" and not ratelimit.allow(
        "meeting-cancel",
        ratelimit.client_ip(request),
        limit=POSTS_PER_WINDOW,
        window=WINDOW_SECONDS,
    ):
        return _page(request, None, "busy", status=429)
    if not invitations.cancel_token_is_valid(meeting_id, token):
        raise Http404
    meeting = Meeting.objects.select_related("site").filter(pk=meeting_id).first()
    if meeting is None:
        raise Http404
    if request.method == "GET":
        return _page(request, meeting, _state(meeting), form=CancelForm())

    form = CancelForm(request.POST)
    valid = form.is_valid()
    if _state(meeting) == "open" and not valid:
        return _page(request, meeting, "open", form=form, status=400)
    try:
        cancel_meeting(
            meeting_id=meeting.pk, by=None, reason=form.cleaned_data["reason"] if valid else ""
        )
    except CannotCancel as exc:
        meeting.refresh_from_db()
        status = 409 if exc.code == "started" else 200
        return _page(request, meeting, _state(meeting), status=status)
    # See Other: reloading the "cancelled" page must not post again.
    return HttpResponseRedirect(request.path, status=303)


def _state(meeting: Meeting) -> str:
    if meeting.status == Meeting.Status.CANCELLED:
        return "cancelled"
    if meeting.start <= timezone.now():
        return "started"
    return "open"


def _page(request, meeting: Meeting | None, state: str, *, form=None, status: int = 200):
    context = {"meeting": meeting, "state": state, "form": form}
    if meeting is not None:
        context |= {
            "site_name": meeting.site.name,
            "when": invitations.written_time(meeting.start, invitations.visitor_zone(meeting)),
            "cancelled_by_visitor": meeting.cancelled_by_id is None,
        }
    response = render(request, "meetings/cancel_visitor.html", context, status=status)
    # The address holds the meeting's token: never send it on to another site. Not
    # "no-referrer": with it browsers post the form with "Origin: null", which Django's CSRF
    # check rightly refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response
