"""Slot arithmetic on its own (calendars.slots, no database): an agent's wall-clock hours,
buffers, notice and horizon, busy times and bookings, daylight-saving days in both hemispheres'
zones, half-hour and quarter-hour offsets, and the visitor who lives on another date.

Every expected time is worked out by hand in the comment beside it.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendars.providers.base import Interval
from calendars.slots import Rules, RulesInvalid, free_slots, group_by_day, parse_rules

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
OFFICE_HOURS = [["09:00", "12:00"], ["13:00", "17:00"]]
WEEKDAYS = {str(day): OFFICE_HOURS for day in range(1, 6)}
EVERY_DAY = {str(day): OFFICE_HOURS for day in range(1, 8)}


def rules(
    *,
    zone="UTC",
    weekly=None,
    overrides=None,
    meeting=30,
    before=0,
    after=0,
    notice=0,
    horizon=14,
) -> Rules:
    return parse_rules(
        time_zone=zone,
        weekly_hours=WEEKDAYS if weekly is None else weekly,
        date_overrides=overrides or {},
        meeting_minutes=meeting,
        buffer_before_minutes=before,
        buffer_after_minutes=after,
        minimum_notice_minutes=notice,
        booking_horizon_days=horizon,
    )


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at(text: str) -> datetime:
    """'2026-06-01 09:30' as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def span(start: str, end: str) -> Interval:
    return Interval(at(start), at(end))


def on_day(slots, day: str, zone="UTC") -> list[str]:
    """The slots on the agent-local `day`, as agent-local HH:MM."""
    tz = ZoneInfo(zone)
    return [
        f"{s.astimezone(tz):%H:%M}" for s in slots if s.astimezone(tz).date().isoformat() == day
    ]


def utc_on_day(slots, day: str, zone) -> list[str]:
    """The slots on the agent-local `day`, as UTC HH:MM."""
    tz = ZoneInfo(zone)
    return [f"{s:%H:%M}" for s in slots if s.astimezone(tz).date().isoformat() == day]


MONDAY = utc(2026, 6, 1)  # Monday 1 June 2026, midnight UTC


# --- The grid -------------------------------------------------------------------------------


def test_slots_step_by_the_meeting_length_from_each_blocks_start_and_fit_inside_it():
    slots = free_slots(rules(meeting=45), now=MONDAY, until=utc(2026, 6, 2))
    # 09:00-12:00: 9:00, 9:45, 10:30, 11:15 (ends 12:00, fits); 13:00-17:00: ... 16:00 ends
    # 16:45, and 16:45 would end 17:30, past the block.
    assert on_day(slots, "2026-06-01") == [
        "09:00", "09:45", "10:30", "11:15",
        "13:00", "13:45", "14:30", "15:15", "16:00",
    ]  # fmt: skip


def test_slots_are_aware_utc_sorted_and_unique():
    slots = free_slots(rules(zone=BERLIN, weekly=EVERY_DAY), now=MONDAY)
    assert slots == sorted(set(slots))
    assert all(s.tzinfo is UTC for s in slots)
    # 14 days (the horizon) of 14 half-hour slots: nothing lost or doubled across the days.
    assert len(slots) == 14 * 14


def test_a_new_york_agents_14_00_slot_is_18_00_utc_in_summer_time_and_19_00_in_winter():
    slots = free_slots(rules(zone=NEW_YORK), now=utc(2026, 3, 5))
    assert utc(2026, 3, 6, 19) in slots  # Friday 6 March, 14:00 EST (UTC-5)
    assert utc(2026, 3, 9, 18) in slots  # Monday 9 March, 14:00 EDT (UTC-4)
    assert on_day(slots, "2026-03-06", NEW_YORK) == on_day(slots, "2026-03-09", NEW_YORK)


def test_a_now_in_another_zone_means_the_same_instant():
    in_tokyo = MONDAY.astimezone(ZoneInfo("Asia/Tokyo"))
    assert free_slots(rules(), now=in_tokyo) == free_slots(rules(), now=MONDAY)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        free_slots(rules(), now=datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="aware"):
        free_slots(
            rules(), now=MONDAY, busy=[Interval(datetime(2026, 6, 1, 9), at("2026-06-01 10:00"))]
        )


# --- Buffers, busy times and bookings --------------------------------------------------------


def test_buffers_keep_the_slots_around_a_provider_busy_time_free():
    # Busy 10:00-10:30, 15 minutes before and after each meeting: a slot s is free when
    # [s - 15, s + 45) misses it. 9:30 -> [9:15, 10:15) no; 10:30 -> [10:15, 11:15) no;
    # 9:00 -> [8:45, 9:45) and 11:00 -> [10:45, 11:45) yes.
    slots = free_slots(
        rules(before=15, after=15),
        now=MONDAY,
        busy=[span("2026-06-01 10:00", "2026-06-01 10:30")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "11:00", "11:30"]


def test_a_provider_busy_time_gets_only_the_new_meetings_buffers():
    # After-buffer 30, no before-buffer: a slot needs [s, s + 60) clear. Busy 10:00-10:30 is
    # someone else's event: 10:30 may follow it at once ([10:30, 11:30) is clear).
    slots = free_slots(
        rules(after=30),
        now=MONDAY,
        busy=[span("2026-06-01 10:00", "2026-06-01 10:30")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "10:30", "11:00", "11:30"]


def test_a_booked_meeting_keeps_the_agents_own_buffer_after_it():
    # The same half hour booked through DynChat is one of the agent's meetings: it blocks
    # [10:00, 11:00) with its after-buffer, so [10:30, 11:30) is not clear and 11:00 is next.
    slots = free_slots(
        rules(after=30),
        now=MONDAY,
        booked=[span("2026-06-01 10:00", "2026-06-01 10:30")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "11:00", "11:30"]


def test_a_booked_meeting_keeps_the_agents_own_buffer_before_it():
    # Before-buffer 30: booked 11:00-11:30 blocks [10:30, 11:30); a slot needs [s - 30, s + 30)
    # clear: 10:00 -> [9:30, 10:30) yes (touching), 10:30 no, 11:30 -> [11:00, 12:00) no.
    slots = free_slots(
        rules(before=30),
        now=MONDAY,
        booked=[span("2026-06-01 11:00", "2026-06-01 11:30")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "09:30", "10:00"]


def test_back_to_back_meetings_are_fine_without_buffers():
    slots = free_slots(
        rules(),
        now=MONDAY,
        booked=[span("2026-06-01 10:00", "2026-06-01 10:30")],
        busy=[span("2026-06-01 11:00", "2026-06-01 11:30")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "09:30", "10:30", "11:30"]


def test_busy_times_from_two_sources_are_merged_whatever_their_order_and_overlaps():
    # Provider: 10:00-10:45 and 9:30-10:15 (unsorted, overlapping); DynChat: 10:30-11:00.
    # Together 9:30-11:00 is taken.
    slots = free_slots(
        rules(),
        now=MONDAY,
        busy=[
            span("2026-06-01 10:00", "2026-06-01 10:45"),
            span("2026-06-01 09:30", "2026-06-01 10:15"),
        ],
        booked=[span("2026-06-01 10:30", "2026-06-01 11:00")],
        until=at("2026-06-01 12:00"),
    )
    assert on_day(slots, "2026-06-01") == ["09:00", "11:00", "11:30"]


def test_a_busy_time_with_seconds_blocks_the_slot_it_touches():
    slots = free_slots(
        rules(),
        now=MONDAY,
        busy=[Interval(at("2026-06-01 09:00"), at("2026-06-01 09:30") + timedelta(seconds=0.5))],
        until=at("2026-06-01 10:30"),
    )
    assert on_day(slots, "2026-06-01") == ["10:00"]


def test_a_busy_day_long_event_blocks_the_whole_day_only():
    slots = free_slots(
        rules(),
        now=MONDAY,
        busy=[span("2026-06-01 00:00", "2026-06-02 00:00")],
        until=utc(2026, 6, 3),
    )
    assert on_day(slots, "2026-06-01") == []
    assert len(on_day(slots, "2026-06-02")) == 14


# --- Notice, horizon, until ------------------------------------------------------------------


def test_minimum_notice_ending_mid_block_starts_at_the_next_grid_slot():
    # 10:10 + 60 minutes of notice = 11:10: the 11:00 slot is too soon, 11:30 is the first.
    slots = free_slots(rules(notice=60), now=at("2026-06-01 10:10"), until=utc(2026, 6, 2))
    assert on_day(slots, "2026-06-01") == [
        "11:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30",
    ]  # fmt: skip


def test_a_slot_exactly_at_the_end_of_the_notice_is_offered():
    slots = free_slots(rules(notice=60), now=at("2026-06-01 10:00"), until=at("2026-06-01 12:00"))
    assert on_day(slots, "2026-06-01") == ["11:00", "11:30"]


def test_24_hours_of_notice_ending_on_a_dst_day_are_24_real_hours():
    # Cal.com #12137. Saturday 7 March 14:10 EST (19:10 UTC) + 24 h = Sunday 8 March 19:10 UTC
    # = 15:10 EDT: the first slot is 15:30 EDT (19:30 UTC), not 14:30 as "same wall time
    # tomorrow" would give.
    slots = free_slots(
        rules(zone=NEW_YORK, weekly=EVERY_DAY, notice=24 * 60), now=utc(2026, 3, 7, 19, 10)
    )
    assert slots[0] == utc(2026, 3, 8, 19, 30)
    assert on_day(slots, "2026-03-08", NEW_YORK) == ["15:30", "16:00", "16:30"]


def test_the_default_day_of_notice_leaves_nothing_today():
    slots = free_slots(rules(notice=1440), now=at("2026-06-01 08:00"))
    assert on_day(slots, "2026-06-01") == []
    assert slots[0] == at("2026-06-02 09:00")


def test_the_horizon_ends_the_slots_mid_day():
    # Monday 10:00 + 1 day: Tuesday's 9:00 and 9:30 are in, 10:00 is not.
    slots = free_slots(rules(horizon=1), now=at("2026-06-01 10:00"))
    assert slots[0] == at("2026-06-01 10:00")
    assert slots[-1] == at("2026-06-02 09:30")


def test_a_two_week_horizon_covers_ten_working_days():
    slots = free_slots(rules(), now=MONDAY)
    assert len({s.date() for s in slots}) == 10
    assert slots[-1] == at("2026-06-12 16:30")


def test_until_cuts_before_the_horizon():
    slots = free_slots(rules(), now=MONDAY, until=at("2026-06-01 10:00"))
    assert slots == [at("2026-06-01 09:00"), at("2026-06-01 09:30")]


def test_since_narrows_the_answer_without_moving_the_grid():
    # From 9:10, the 9:00 slot is out; the next is still 9:30, on the block's half-hour grid.
    slots = free_slots(
        rules(), now=MONDAY, since=at("2026-06-01 09:10"), until=at("2026-06-01 10:30")
    )
    assert slots == [at("2026-06-01 09:30"), at("2026-06-01 10:00")]
    one = free_slots(rules(), now=MONDAY, since=at("2026-06-12 16:30"), until=utc(2026, 6, 13))
    assert one == [at("2026-06-12 16:30")]


def test_since_never_lets_in_a_slot_inside_the_notice():
    slots = free_slots(rules(notice=120), now=at("2026-06-01 09:00"), since=MONDAY)
    assert slots[0] == at("2026-06-01 11:00")


def test_notice_past_the_horizon_leaves_no_slots():
    assert free_slots(rules(notice=3 * 1440, horizon=2), now=MONDAY) == []


# --- Date overrides --------------------------------------------------------------------------


def test_a_date_override_can_take_a_day_off():
    slots = free_slots(rules(overrides={"2026-06-01": []}), now=MONDAY, until=utc(2026, 6, 3))
    assert on_day(slots, "2026-06-01") == []
    assert len(on_day(slots, "2026-06-02")) == 14


def test_a_date_override_can_add_hours_on_a_weekend():
    slots = free_slots(rules(overrides={"2026-06-06": [["10:00", "11:00"]]}), now=MONDAY)
    assert on_day(slots, "2026-06-06") == ["10:00", "10:30"]  # Saturday
    assert on_day(slots, "2026-06-07") == []  # Sunday, as every week


def test_a_date_override_replaces_the_weekly_hours_of_that_day():
    slots = free_slots(
        rules(overrides={"2026-06-02": [["15:00", "16:00"], ["18:00", "18:30"]]}), now=MONDAY
    )
    assert on_day(slots, "2026-06-02") == ["15:00", "15:30", "18:00"]
    assert len(on_day(slots, "2026-06-09")) == 14  # the next Tuesday keeps its weekly hours


def test_an_override_is_a_date_in_the_agents_zone():
    # Tokyo agent, day off on Tuesday 2 June (local): Monday 15:00 UTC onwards is Tuesday there.
    slots = free_slots(
        rules(zone="Asia/Tokyo", overrides={"2026-06-02": []}), now=MONDAY, until=utc(2026, 6, 4)
    )
    assert on_day(slots, "2026-06-02", "Asia/Tokyo") == []
    # Wednesday 9:00 JST is 00:00 UTC.
    assert utc_on_day(slots, "2026-06-03", "Asia/Tokyo")[0] == "00:00"


# --- Daylight saving -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "morning", "afternoon", "day_before_afternoon"),
    [
        # New York, clocks forward Sunday 8 March: EDT (UTC-4) that day, EST (UTC-5) before.
        (NEW_YORK, "2026-03-08", "13:00", "17:00", "18:00"),
        # New York, clocks back Sunday 1 November: EST that day, EDT before.
        (NEW_YORK, "2026-11-01", "14:00", "18:00", "17:00"),
        # Berlin, clocks forward Sunday 29 March: CEST (UTC+2) that day, CET (UTC+1) before.
        (BERLIN, "2026-03-29", "07:00", "11:00", "12:00"),
        # Berlin, clocks back Sunday 25 October: CET that day, CEST before.
        (BERLIN, "2026-10-25", "08:00", "12:00", "11:00"),
    ],
)
def test_on_dst_days_the_wall_clock_hours_hold_after_13_00_too(
    zone, day, morning, afternoon, day_before_afternoon
):
    # Cal.com #30021: the offset sampled with a 12-hour clock shifted slots from 13:00 onward.
    transition = date.fromisoformat(day)
    now = datetime.combine(transition - timedelta(days=2), datetime.min.time(), UTC)
    slots = free_slots(rules(zone=zone, weekly=EVERY_DAY), now=now)
    local = on_day(slots, day, zone)
    # The whole 9:00-12:00 and 13:00-17:00: no block shrinks or grows by an hour.
    assert local == on_day(slots, (transition + timedelta(days=1)).isoformat(), zone)
    assert len(local) == 14 and local[0] == "09:00" and local[6] == "13:00"
    in_utc = utc_on_day(slots, day, zone)
    assert (in_utc[0], in_utc[6]) == (morning, afternoon)
    before = utc_on_day(slots, (transition - timedelta(days=1)).isoformat(), zone)
    assert before[6] == day_before_afternoon


def test_a_block_across_the_skipped_hour_in_new_york_lasts_two_real_hours():
    # 1:00-4:00 on 8 March: 1:00 EST = 06:00 UTC, 4:00 EDT = 08:00 UTC; 2:00-3:00 never happens.
    slots = free_slots(
        rules(zone=NEW_YORK, overrides={"2026-03-08": [["01:00", "04:00"]]}),
        now=utc(2026, 3, 7),
        until=utc(2026, 3, 9),
    )
    assert slots == [
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 6, 30),
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 7, 30),
    ]
    assert on_day(slots, "2026-03-08", NEW_YORK) == ["01:00", "01:30", "03:00", "03:30"]


def test_a_block_across_the_skipped_hour_in_berlin_lasts_two_real_hours():
    # 1:00-4:00 on 29 March: 1:00 CET = 00:00 UTC, 4:00 CEST = 02:00 UTC.
    slots = free_slots(
        rules(zone=BERLIN, overrides={"2026-03-29": [["01:00", "04:00"]]}),
        now=utc(2026, 3, 28),
        until=utc(2026, 3, 30),
    )
    assert slots == [
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 1, 30),
    ]
    assert on_day(slots, "2026-03-29", BERLIN) == ["01:00", "01:30", "03:00", "03:30"]


def test_a_block_starting_in_the_skipped_hour_starts_when_the_clock_resumes():
    # 2:50 does not exist on 8 March in New York: that block starts at 3:00 EDT (07:00 UTC).
    # 2:00-2:45 lies wholly in the skipped hour and offers nothing.
    slots = free_slots(
        rules(zone=NEW_YORK, overrides={"2026-03-08": [["02:00", "02:45"], ["02:50", "04:00"]]}),
        now=utc(2026, 3, 7),
        until=utc(2026, 3, 9),
    )
    assert slots == [utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30)]


def test_a_block_ending_in_the_skipped_hour_ends_when_the_clock_resumes():
    # 1:00-2:30 on 8 March ends at 3:00 EDT = 07:00 UTC: an hour of real time, two slots.
    slots = free_slots(
        rules(zone=NEW_YORK, overrides={"2026-03-08": [["01:00", "02:30"]]}),
        now=utc(2026, 3, 7),
        until=utc(2026, 3, 9),
    )
    assert slots == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 6, 30)]


def test_a_block_inside_the_repeated_hour_keeps_its_wall_clock_length():
    # New York, 1 November: 1:00-2:00 happens twice (EDT, then EST). 0:00-1:30 is 04:00-05:30
    # UTC (the first 1:30): three slots, not five.
    slots = free_slots(
        rules(zone=NEW_YORK, overrides={"2026-11-01": [["00:00", "01:30"]]}),
        now=utc(2026, 10, 31),
        until=utc(2026, 11, 2),
    )
    assert slots == [utc(2026, 11, 1, 4), utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 5)]


def test_a_block_across_the_repeated_hour_lasts_the_real_time_the_clock_shows():
    # 1:00 (first, EDT) = 05:00 UTC to 3:00 EST = 08:00 UTC: three real hours, as the wall clock
    # really runs 1:00-2:00 twice; the slots keep the half-hour grid.
    slots = free_slots(
        rules(zone=NEW_YORK, overrides={"2026-11-01": [["01:00", "03:00"]]}),
        now=utc(2026, 10, 31),
        until=utc(2026, 11, 2),
    )
    assert [f"{s:%H:%M}" for s in slots] == ["05:00", "05:30", "06:00", "06:30", "07:00", "07:30"]


def test_a_berlin_block_in_the_repeated_hour_starts_at_its_first_occurrence():
    # 25 October: 2:00-3:00 happens twice; 2:00 CEST (the first) is 00:00 UTC.
    slots = free_slots(
        rules(zone=BERLIN, overrides={"2026-10-25": [["02:00", "02:30"]]}),
        now=utc(2026, 10, 24),
        until=utc(2026, 10, 26),
    )
    assert slots == [utc(2026, 10, 25, 0)]


def test_southern_hemisphere_clocks_go_back_in_april():
    # Auckland, Sunday 5 April 2026: NZDT (+13) ends at 3:00, NZST (+12) after. 9:00 NZST is
    # 21:00 UTC the day before; the Saturday's 9:00 NZDT is 20:00 UTC.
    slots = free_slots(
        rules(zone="Pacific/Auckland", weekly=EVERY_DAY), now=utc(2026, 4, 2), until=utc(2026, 4, 6)
    )
    assert utc(2026, 4, 3, 20) in slots  # Saturday 4 April 9:00 NZDT
    assert utc(2026, 4, 4, 21) in slots  # Sunday 5 April 9:00 NZST
    assert len(on_day(slots, "2026-04-05", "Pacific/Auckland")) == 14


# --- Offsets that are not whole hours --------------------------------------------------------


def test_a_kolkata_agents_day_starts_at_03_30_utc():
    slots = free_slots(rules(zone="Asia/Kolkata"), now=MONDAY, until=utc(2026, 6, 2))
    # 9:00 IST (UTC+5:30) = 03:30 UTC; 13:00 IST = 07:30 UTC; 16:30 IST = 11:00 UTC.
    assert [f"{s:%H:%M}" for s in slots[:3]] == ["03:30", "04:00", "04:30"]
    assert slots[6] == utc(2026, 6, 1, 7, 30)
    assert slots[-1] == utc(2026, 6, 1, 11)


def test_a_kathmandu_agents_day_starts_at_03_15_utc():
    slots = free_slots(rules(zone="Asia/Kathmandu", meeting=45), now=MONDAY, until=utc(2026, 6, 2))
    # 9:00 NPT (UTC+5:45) = 03:15 UTC, then every 45 minutes: 04:00, 04:45, 05:30 (11:15 NPT).
    assert [f"{s:%H:%M}" for s in slots[:4]] == ["03:15", "04:00", "04:45", "05:30"]
    assert slots[4] == utc(2026, 6, 1, 7, 15)  # 13:00 NPT


def test_busy_times_line_up_with_a_quarter_hour_offset():
    # Busy 04:00-04:45 UTC = 9:45-10:30 NPT: the 9:30 and 10:00 slots go, 10:30 stays.
    slots = free_slots(
        rules(zone="Asia/Kathmandu"),
        now=MONDAY,
        busy=[span("2026-06-01 04:00", "2026-06-01 04:45")],
        until=utc(2026, 6, 1, 6, 15),
    )
    assert on_day(slots, "2026-06-01", "Asia/Kathmandu") == [
        "09:00", "10:30", "11:00", "11:30",
    ]  # fmt: skip


# --- The visitor's days ----------------------------------------------------------------------


def test_a_visitor_in_tokyo_sees_a_new_york_morning_across_two_dates():
    # Monday 1 June, New York (EDT, UTC-4) 9:00-12:00 = 13:00-16:00 UTC = 22:00-01:00 JST.
    slots = free_slots(rules(zone=NEW_YORK), now=MONDAY, until=utc(2026, 6, 1, 16))
    days = group_by_day(slots, ZoneInfo("Asia/Tokyo"))
    assert [(day.isoformat(), [f"{s:%H:%M}" for s in starts]) for day, starts in days] == [
        ("2026-06-01", ["13:00", "13:30", "14:00", "14:30"]),  # 22:00-23:30 Monday in Tokyo
        ("2026-06-02", ["15:00", "15:30"]),  # 0:00 and 0:30 Tuesday
    ]


def test_a_visitor_in_auckland_sees_a_late_afternoon_slot_the_next_morning():
    # 16:30 EDT Monday = 20:30 UTC = 8:30 NZST (UTC+12) Tuesday.
    days = group_by_day([utc(2026, 6, 1, 20, 30)], ZoneInfo("Pacific/Auckland"))
    assert days == [(date(2026, 6, 2), [utc(2026, 6, 1, 20, 30)])]


def test_grouping_puts_days_and_slots_in_order():
    starts = [utc(2026, 6, 2, 9), utc(2026, 6, 1, 10), utc(2026, 6, 1, 9)]
    assert group_by_day(starts, ZoneInfo("UTC")) == [
        (date(2026, 6, 1), [utc(2026, 6, 1, 9), utc(2026, 6, 1, 10)]),
        (date(2026, 6, 2), [utc(2026, 6, 2, 9)]),
    ]
    assert group_by_day([], ZoneInfo("UTC")) == []


# --- Rules that cannot be used ---------------------------------------------------------------


VALID = {
    "time_zone": "Europe/Berlin",
    "weekly_hours": WEEKDAYS,
    "date_overrides": {"2026-12-24": [], "2026-12-27": [["10:00", "12:00"]]},
    "meeting_minutes": 30,
    "buffer_before_minutes": 5,
    "buffer_after_minutes": 10,
    "minimum_notice_minutes": 1440,
    "booking_horizon_days": 14,
}


def test_the_stored_shapes_parse_into_rules():
    parsed = parse_rules(**VALID)
    assert parsed.time_zone == ZoneInfo("Europe/Berlin")
    assert parsed.weekly_hours[1] == ((time(9), time(12)), (time(13), time(17)))
    assert 6 not in parsed.weekly_hours
    assert parsed.date_overrides[date(2026, 12, 24)] == ()
    assert (parsed.buffer_before_minutes, parsed.buffer_after_minutes) == (5, 10)


def test_blocks_are_sorted_when_parsed():
    parsed = parse_rules(
        **{**VALID, "weekly_hours": {"1": [["13:00", "17:00"], ["9:00", "12:00"]]}}
    )
    assert [f"{start:%H:%M}" for start, _ in parsed.weekly_hours[1]] == ["09:00", "13:00"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "unknown time zone 'Mars/Olympus_Mons'"),
        ({"time_zone": "../../etc/passwd"}, "time_zone", "unknown time zone"),
        ({"time_zone": ""}, "time_zone", "a time zone name is required"),
        (
            {"weekly_hours": {"1": [["25:00", "26:00"]]}},
            "weekly_hours",
            "Monday: '25:00' is not a time",
        ),
        ({"weekly_hours": {"1": [["09:00", "12:60"]]}}, "weekly_hours", "'12:60' is not a time"),
        ({"weekly_hours": {"1": [["09:00", "24:00"]]}}, "weekly_hours", "'24:00' is not a time"),
        ({"weekly_hours": {"1": [["9am", "5pm"]]}}, "weekly_hours", "'9am' is not a time"),
        ({"weekly_hours": {"1": [[9, 17]]}}, "weekly_hours", "9 is not a time"),
        (
            {"weekly_hours": {"2": [["12:00", "09:00"]]}},
            "weekly_hours",
            "Tuesday: a block must end after it starts",
        ),
        ({"weekly_hours": {"2": [["09:00", "09:00"]]}}, "weekly_hours", "must end after it starts"),
        ({"weekly_hours": {"3": [["22:00", "00:00"]]}}, "weekly_hours", "must end after it starts"),
        (
            {"weekly_hours": {"3": [["09:00", "12:00"], ["11:00", "13:00"]]}},
            "weekly_hours",
            "Wednesday: blocks overlap",
        ),
        ({"weekly_hours": {"0": []}}, "weekly_hours", "unknown weekday '0'"),
        ({"weekly_hours": {"8": []}}, "weekly_hours", "unknown weekday '8'"),
        ({"weekly_hours": {"monday": []}}, "weekly_hours", "unknown weekday 'monday'"),
        ({"weekly_hours": {"1": [["09:00"]]}}, "weekly_hours", "is not a [start, end] block"),
        ({"weekly_hours": {"1": "09:00-17:00"}}, "weekly_hours", "must be a list"),
        ({"weekly_hours": [["09:00", "17:00"]]}, "weekly_hours", "must map ISO weekdays"),
        ({"date_overrides": {"2026-02-30": []}}, "date_overrides", "'2026-02-30' is not a date"),
        ({"date_overrides": {"24/12/2026": []}}, "date_overrides", "'24/12/2026' is not a date"),
        ({"date_overrides": {"20261224": []}}, "date_overrides", "'20261224' is not a date"),
        (
            {"date_overrides": {"2026-12-27": [["12:00", "10:00"]]}},
            "date_overrides",
            "2026-12-27: a block must end",
        ),
        ({"date_overrides": None}, "date_overrides", "must map dates"),
        ({"meeting_minutes": 0}, "meeting_minutes", "from 1 to 1440"),
        ({"meeting_minutes": "30"}, "meeting_minutes", "not '30'"),
        ({"meeting_minutes": True}, "meeting_minutes", "not True"),
        ({"buffer_before_minutes": -5}, "buffer_before_minutes", "from 0"),
        ({"buffer_after_minutes": 1.5}, "buffer_after_minutes", "not 1.5"),
        ({"minimum_notice_minutes": None}, "minimum_notice_minutes", "not None"),
        ({"booking_horizon_days": 1000}, "booking_horizon_days", "from 0 to 366"),
    ],
)
def test_bad_availability_is_refused_with_the_field_and_the_reason(change, field, message):
    with pytest.raises(RulesInvalid) as exc:
        parse_rules(**{**VALID, **change})
    assert exc.value.field == field
    assert message in exc.value.message
