"""Center-local wall-clock time, handled explicitly.

Centers plan in local time; the database keeps instants. A local time that does not exist
(the hour skipped when clocks spring forward) or happens twice (when they fall back) is
rejected by `strict_instant`, never guessed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UnknownTimeZone(ValueError):
    pass


class NonexistentLocalTime(ValueError):
    pass


class AmbiguousLocalTime(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or UnknownTimeZone (no fixed offsets, no 'localtime', no paths)."""
    looks_like_a_path = name.startswith(("/", ".")) or ".." in name
    not_a_place = name.startswith(("Etc/", "right/", "posix/")) and name != "Etc/UTC"
    if not name or ("/" not in name and name != "UTC") or looks_like_a_path or not_a_place:
        raise UnknownTimeZone(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise UnknownTimeZone(name) from exc


def strict_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The one instant at which clocks in `tz` show `wall` on `day`."""
    first = datetime.combine(day, wall, tzinfo=tz).replace(fold=0)
    second = first.replace(fold=1)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) != first.replace(tzinfo=None):
        raise NonexistentLocalTime(
            f"{day.isoformat()} {wall.strftime('%H:%M')} does not exist in {tz.key}"
        )
    if first.utcoffset() != second.utcoffset():
        raise AmbiguousLocalTime(
            f"{day.isoformat()} {wall.strftime('%H:%M')} happens twice in {tz.key}"
        )
    return as_utc


def lenient_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """For configured boundaries (opening hours, shifts): a skipped time moves forward by the
    gap, a repeated time means its first occurrence."""
    return datetime.combine(day, wall, tzinfo=tz).replace(fold=0).astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants at which the local calendar day starts and ends (23, 24 or 25 h apart)."""
    return lenient_instant(day, time(0), tz), lenient_instant(day + timedelta(days=1), time(0), tz)
