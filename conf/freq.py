"""Series frequencies: the pandas offset aliases lakecast accepts, and what follows from them.

Calendar frequencies are real calendar steps: month, quarter and year starts (MS, QS, YS), or
their ends (ME, QE, YE: midnight on the period's last day, as pandas' month-end dates); the
others are fixed durations (min, h, D, W). pandas' older spellings are accepted and read as the
current ones (H, T, M, Q, A/Y, AS, QS-JAN ...; `canonical` gives the name lakecast uses). Weekly
steps fall on Sundays (W, as pandas) or the day named: W-MON ... W-SAT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta

_RE = re.compile(r"^(\d*)(min|h|D|W|MS|QS|YS|ME|QE|YE)$")
_FIXED = {"min": timedelta(minutes=1), "h": timedelta(hours=1), "D": timedelta(days=1),
          "W": timedelta(weeks=1)}
_PERIOD_MONTHS = {"MS": 1, "ME": 1, "QS": 3, "QE": 3, "YS": 12, "YE": 12}
# pandas' older or anchored spellings of the same grids (anchors: the calendar year's, Sunday weeks)
_LEGACY = {"H": "h", "T": "min", "M": "ME", "Q": "QE", "Q-DEC": "QE", "QS-JAN": "QS",
           "A": "YE", "Y": "YE", "A-DEC": "YE", "Y-DEC": "YE", "YE-DEC": "YE", "QE-DEC": "QE",
           "AS": "YS", "AS-JAN": "YS", "YS-JAN": "YS"}
# Single quarters anchored on another of the calendar quarters' months fall on the same dates
# (`pd.infer_freq` calls January/April/July/October starts "QS-OCT"); with a multiple they do not
# (2QS-APR steps April and October, lakecast's 2QS January and July), so these take none.
_QUARTER_ANCHORS = {**{f"QS-{m}": "QS" for m in ("APR", "JUL", "OCT")},
                    **{f"{q}-{m}": "QE" for q in ("Q", "QE") for m in ("MAR", "JUN", "SEP")}}
_LEGACY_RE = re.compile(r"^(\d*)([A-Za-z-]+)$")
_WEEKLY_RE = re.compile(r"^(\d*)W-(SUN|MON|TUE|WED|THU|FRI|SAT)$")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
SUPPORTED = ("15min, h, D, W, W-MON, MS, ME, QS, QE, YS, YE, optionally with a multiple such as 2h "
             "(business days: D, the days without data become gaps)")


@dataclass(frozen=True)
class Freq:
    multiple: int
    unit: str  # min | h | D | W | MS | QS | YS | ME | QE | YE
    weekday: str = "SUN"  # W: the day weekly steps fall on (pandas' W is W-SUN)

    @property
    def alias(self) -> str:
        day = f"-{self.weekday}" if self.unit == "W" and self.weekday != "SUN" else ""
        return f"{self.multiple if self.multiple != 1 else ''}{self.unit}{day}"

    @property
    def is_calendar(self) -> bool:
        """Month/quarter/year steps vary in length, so they are stepped in months, not seconds."""
        return self.unit in _PERIOD_MONTHS

    @property
    def period_end(self) -> bool:
        """Steps are stamped at the end of their period (ME, QE, YE: midnight on its last day)."""
        return self.unit in ("ME", "QE", "YE")

    @property
    def period_months(self) -> int:
        """Months in one period of the unit (quarters and years start in January, April, ...)."""
        return _PERIOD_MONTHS[self.unit]

    @property
    def step(self) -> timedelta:
        """Fixed step length; calendar frequencies have none (use `months`)."""
        if self.is_calendar:
            raise ValueError(f"frequency {self.alias} is a calendar step; use months")
        return _FIXED[self.unit] * self.multiple

    @property
    def months(self) -> int:
        """Months per step for calendar frequencies."""
        return self.multiple * _PERIOD_MONTHS[self.unit]

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


def canonical(alias: str) -> str:
    """The name lakecast uses for a pandas alias (`M` -> `ME`, `2H` -> `2h`, `AS-JAN` -> `YS`)."""
    return parse_freq(alias).alias


def parse_freq(alias: str) -> Freq:
    weekly = _WEEKLY_RE.fullmatch(alias)
    if weekly:
        return replace(parse_freq(f"{weekly.group(1)}W"), weekday=weekly.group(2))
    if alias in _QUARTER_ANCHORS:
        return parse_freq(_QUARTER_ANCHORS[alias])
    m = _RE.fullmatch(alias)
    legacy = _LEGACY_RE.fullmatch(alias) if not m else None
    if legacy and _LEGACY.get(legacy.group(2)):
        m = _RE.fullmatch(f"{legacy.group(1)}{_LEGACY[legacy.group(2)]}")
    if not m:
        raise ValueError(f"{alias!r} is not a supported frequency ({SUPPORTED})")
    mult = int(m.group(1)) if m.group(1) else 1
    if mult < 1:
        raise ValueError(f"{alias!r}: the multiple must be at least 1")
    return Freq(mult, m.group(2))
