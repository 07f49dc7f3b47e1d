"""Calendar arithmetic for bills: local days, weekdays, business days, the due-day roll.

Pure integer functions (every replica computes the same): no ``datetime`` in a handler.

* A *day* is a day number: days since 1970-01-01 in the chain's time zone
  (``Params.tz_offset_min``, default UTC+8); ``local_day(ms, tz)`` is the day of a block time.
* A day is a *business day* by the calendar of its year (``Calendar``, voted by the
  committee: weekends, holidays and 调休 working days, all in one bitmap) if that year has
  one; otherwise by the weekday alone (``Params.weekend_mask``: Saturday and Sunday).
* The *due day* of a bill is its maturity day if that is a business day, else the next
  business day, at most ``roll_days_max`` later (else ``None``: no business day).
"""

from __future__ import annotations

from collections.abc import Callable

from tierchain.apps.bills.codes import Calendar, calendar_bytes, day_ms, roll_days_max


def local_day(timestamp_ms: int, tz_offset_min: int) -> int:
    """The local day number of a block time."""
    return (timestamp_ms + tz_offset_min * 60_000) // day_ms


def weekday(day: int) -> int:
    """Monday 0 .. Sunday 6 (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def days_from_civil(year: int, month: int, dom: int) -> int:
    """The day number of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + dom - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(day: int) -> tuple[int, int, int]:
    """(year, month, day of month) of a day number."""
    z = day + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    dom = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, dom


def year_of(day: int) -> int:
    return civil_from_days(day)[0]


def year_length(year: int) -> int:
    return 366 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 365


def is_business_day(day: int, weekend_mask: int, calendar_of: Callable[[int], Calendar | None]) -> bool:
    """Whether ``day`` is a business day: its year's calendar if any, else the weekday rule."""
    year = year_of(day)
    cal = calendar_of(year)
    if cal is not None:
        return not cal.is_closed(day - days_from_civil(year, 1, 1))
    return not weekend_mask >> weekday(day) & 1


def due_day(
    maturity_day: int, weekend_mask: int, calendar_of: Callable[[int], Calendar | None]
) -> int | None:
    """The first business day on or after ``maturity_day`` within ``roll_days_max``, or None."""
    for day in range(maturity_day, maturity_day + roll_days_max + 1):
        if is_business_day(day, weekend_mask, calendar_of):
            return day
    return None


def calendar_bitmap(
    year: int, weekend_mask: int, holidays: list[int] = (), workdays: list[int] = ()
) -> bytes:
    """A year's ``Calendar.closed`` bitmap: weekends by ``weekend_mask``, plus ``holidays``,
    minus ``workdays`` (weekend days made working days, 调休), each a day number in ``year``
    (ValueError otherwise)."""
    first, n = days_from_civil(year, 1, 1), year_length(year)
    bits = bytearray(calendar_bytes)
    for i in range(n):
        if weekend_mask >> weekday(first + i) & 1:
            bits[i >> 3] |= 1 << (i & 7)
    for day, closed in [(d, True) for d in holidays] + [(d, False) for d in workdays]:
        i = day - first
        if not 0 <= i < n:
            raise ValueError(f"day {day} is not in {year}")
        if closed:
            bits[i >> 3] |= 1 << (i & 7)
        else:
            bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF
    return bytes(bits)


def bitmap_fits_year(year: int, bitmap: bytes) -> bool:
    """No bit set beyond the year's last day."""
    n = year_length(year)
    return len(bitmap) == calendar_bytes and all(
        not bitmap[i >> 3] >> (i & 7) & 1 for i in range(n, calendar_bytes * 8)
    )
