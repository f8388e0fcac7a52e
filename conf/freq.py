"""Series frequencies: the pandas offset aliases lakecast accepts, and what follows from them.

Calendar frequencies (MS, QS) are real calendar steps; the others are fixed durations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_RE = re.compile(r"^(\d*)(min|h|D|W|MS|QS)$")
_FIXED = {"min": timedelta(minutes=1), "h": timedelta(hours=1), "D": timedelta(days=1),
          "W": timedelta(weeks=1)}


@dataclass(frozen=True)
class Freq:
    multiple: int
    unit: str  # min | h | D | W | MS | QS

    @property
    def alias(self) -> str:
        return f"{self.multiple if self.multiple != 1 else ''}{self.unit}"

    @property
    def is_calendar(self) -> bool:
        """Month/quarter steps vary in length, so they are stepped in months, not seconds."""
        return self.unit in ("MS", "QS")

    @property
    def step(self) -> timedelta:
        """Fixed step length; calendar frequencies have none (use `months`)."""
        if self.is_calendar:
            raise ValueError(f"frequency {self.alias} is a calendar step; use months")
        return _FIXED[self.unit] * self.multiple

    @property
    def months(self) -> int:
        """Months per step for calendar frequencies."""
        return self.multiple * (3 if self.unit == "QS" else 1)

    def season_length(self) -> int:
        """Steps per dominant season: a day for sub-daily, a week for daily, a year above."""
        if self.is_calendar:
            return max(1, 12 // self.months)
        step = self.step
        if step < timedelta(days=1):
            return max(1, int(timedelta(days=1) / step))
        if step < timedelta(weeks=1):
            return max(1, int(timedelta(weeks=1) / step))
        return max(1, int(timedelta(days=364) / step))


def parse_freq(alias: str) -> Freq:
    m = _RE.fullmatch(alias)
    if not m:
        raise ValueError(f"{alias!r} is not a supported frequency (15min, h, D, W, MS, QS, 2h ...)")
    mult = int(m.group(1)) if m.group(1) else 1
    if mult < 1:
        raise ValueError(f"{alias!r}: the multiple must be at least 1")
    return Freq(mult, m.group(2))
