"""The filters every report page takes from its query string: a date range, a dialogue, and
known or anonymous visitors. Bad values give a form error on the page and the defaults."""

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms
from django.utils import timezone

from dialogues.models import Dialogue, Site
from reports.rollup import report_day

# The longest range a report covers: the daily tables outlive the raw data (RETENTION_DAYS),
# so trends can look back this far.
MAX_DAYS = 731
DEFAULT_DAYS = 30
PRESETS = (7, 30, 90, 365)


class Visitors:
    ALL = ""
    KNOWN = "known"
    ANONYMOUS = "anonymous"
    CHOICES = ((ALL, "All visitors"), (KNOWN, "Known visitors"), (ANONYMOUS, "Anonymous visitors"))


@dataclass(frozen=True)
class ReportFilters:
    start: date
    end: date  # inclusive
    dialogue_id: int | None = None
    visitors: str = Visitors.ALL

    @property
    def known(self) -> bool | None:
        """The `known` value the report rows must have (None: both)."""
        return {Visitors.KNOWN: True, Visitors.ANONYMOUS: False}.get(self.visitors)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def query(self, **changes) -> dict:
        """The query string that asks for these filters (with `changes`), for links."""
        values = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "dialogue": self.dialogue_id or "",
            "visitors": self.visitors,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


def today() -> date:
    return report_day(timezone.now())


def default_filters(days: int = DEFAULT_DAYS) -> ReportFilters:
    end = today()
    return ReportFilters(start=end - timedelta(days=days - 1), end=end)


class ReportFilterForm(forms.Form):
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    dialogue = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Dialogue"
    )
    visitors = forms.ChoiceField(required=False, choices=Visitors.CHOICES, label="Visitors")

    def __init__(self, data=None, *, site: Site, with_dialogue: bool = True):
        super().__init__(data)
        self.site = site
        if with_dialogue:
            dialogues = (
                Dialogue.objects.filter(site=site).order_by("name").values_list("pk", "name")
            )
            self.fields["dialogue"].choices = [("", "All dialogues"), *dialogues]
        else:
            del self.fields["dialogue"]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        defaults = default_filters()
        start = start or (end - timedelta(days=DEFAULT_DAYS - 1) if end else defaults.start)
        end = end or max(defaults.end, start)
        if end < start:
            self.add_error("end", "The end date is before the start date.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", f"Reports cover at most {MAX_DAYS} days.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def filters(self) -> ReportFilters:
        """The valid filters in the form; the defaults for any field that is not valid."""
        data = getattr(self, "cleaned_data", {})
        defaults = default_filters()
        if "start" in self.errors or "end" in self.errors:
            start, end = defaults.start, defaults.end
        else:
            start, end = data.get("start", defaults.start), data.get("end", defaults.end)
        return ReportFilters(
            start=start,
            end=end,
            dialogue_id=data.get("dialogue") if "dialogue" in self.fields else None,
            visitors=data.get("visitors") or Visitors.ALL,
        )


def filters_from(request, site: Site, *, with_dialogue: bool = True):
    """The filter form for `request`'s query string and the filters to apply."""
    if request.GET:
        form = ReportFilterForm(request.GET, site=site, with_dialogue=with_dialogue)
        form.is_valid()
        return form, form.filters()
    filters = default_filters()
    form = ReportFilterForm(site=site, with_dialogue=with_dialogue)
    # Shown in the form, so the dates on the page are the ones reported.
    form.initial = {"start": filters.start, "end": filters.end}
    return form, filters
