"""Quiet hours: a span of local time, every day, in which no reminder reaches a patient (pure).

A clinic sets them as two local times (``start``, ``end``); they are read in each schedule's own time zone, so a
clinic with patients in several zones keeps every patient's night quiet. ``end`` earlier than ``start`` spans
midnight (22:00 to 07:00). A reminder that falls in them is delivered at their end, the next instant the patient's
clock shows ``end``, on that day's own offset (07:00 in Oslo is 05:00 UTC in summer, 06:00 in winter, whatever the
offset was when the reminder fell). An ``end`` the clocks skip (02:30 on the night summer time starts) is read on the
offset before the change (03:30 summer time); an ``end`` they show twice is its first showing still to come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time is quiet: [start, end), across midnight if end <= start."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours that ``moment`` falls in end (UTC), or None if it does not fall in any."""
        local = moment.astimezone(zone)
        wall = local.time().replace(tzinfo=None)
        if not self.contains(wall):
            return None
        day = local.date()
        if wall >= self.end:  # quiet since start, this evening: they end tomorrow
            day += timedelta(days=1)
        first = datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
        if first > moment:
            return first
        return datetime.combine(day, self.end.replace(fold=1), tzinfo=zone).astimezone(UTC)  # its second showing
