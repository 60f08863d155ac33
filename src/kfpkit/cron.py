"""One cron syntax for every target: standard 5-field cron, optionally with a time zone.

The user writes ``[TZ=Area/City ]minute hour day-of-month month day-of-week`` (``CRON_TZ=``
is accepted for ``TZ=``; ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly`` and
``@annually`` stand for their 5 fields). Each field takes ``*``, numbers, ranges ``a-b``,
steps ``*/n`` and ``a-b/n``, and lists of those; months and weekdays also take the names
``JAN``-``DEC`` and ``SUN``-``SAT`` (any case); Sunday is 0 or 7.

What each target gets (:func:`parse` checks everything first, so nothing wrong reaches one):

- Kubeflow Pipelines (:meth:`Cron.kubeflow`): 6 fields, seconds first (``0 m h dom mon dow``),
  the format of the robfig/cron parser KFP's scheduler uses. KFP's API has no time zone field
  and its scheduler runs crons in the controller's zone (UTC on standard installs), so a time
  zone other than UTC is refused rather than silently shifted: write the hours in UTC.
- Vertex AI Pipelines (:meth:`Cron.vertex`): the 5 fields, prefixed ``TZ=Area/City `` when a
  zone was given (Vertex's documented form); without one Vertex uses UTC.

Both get the normalised fields: names turned into numbers and Sunday written 0 (robfig's
weekday range is 0-6), so both services read the same schedule.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    _Field("day of week", 0, 7, {d: i for i, d in enumerate(_WEEKDAYS)}),
)

_DESCRIPTORS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"}
_TZ_PREFIX = re.compile(r"^(?:CRON_TZ|TZ)=(\S*)\s+(.*)$", re.DOTALL)
_ELEMENT = re.compile(r"^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")


@dataclass(frozen=True)
class Cron:
    """A checked schedule: five normalised fields and an optional IANA time zone."""

    fields: tuple[str, str, str, str, str]
    time_zone: str = ""  # "" when none was given (both services then use UTC)

    @property
    def is_utc(self) -> bool:
        return self.time_zone in ("", *_UTC_NAMES)

    def kubeflow(self) -> str:
        """KFP's 6-field cron (seconds first). ValueError for a zone other than UTC."""
        if not self.is_utc:
            raise ValueError(
                f"Kubeflow Pipelines schedules have no time zone (its scheduler runs crons in "
                f"UTC): TZ={self.time_zone} is refused rather than silently shifted; write the "
                f"schedule in UTC without the TZ= prefix"
            )
        return "0 " + " ".join(self.fields)

    def vertex(self) -> str:
        """Vertex AI's 5-field cron, ``TZ=Area/City `` first when a zone was given."""
        five = " ".join(self.fields)
        return f"TZ={self.time_zone} {five}" if self.time_zone else five

    def __str__(self) -> str:
        return self.vertex()


def _value(text: str, field: _Field, expr: str) -> int:
    if text.isdigit():
        number = int(text)
    elif text.upper() in field.names:
        number = field.names[text.upper()]
    else:
        raise ValueError(f"cron {expr!r}: {text!r} is not a valid {field.name}")
    if not field.low <= number <= field.high:
        raise ValueError(
            f"cron {expr!r}: {field.name} {text!r} is outside {field.low}-{field.high}"
        )
    return number


def _normalise_field(text: str, field: _Field, expr: str) -> str:
    """The field with names as numbers (and weekday 7 as 0); ValueError naming a bad part."""
    parts: list[str] = []
    for element in text.split(","):
        match = _ELEMENT.match(element)
        if not match:
            raise ValueError(f"cron {expr!r}: {element!r} is not a valid {field.name} element")
        star, start, end, step = match.groups()
        if step is not None and int(step) < 1:
            raise ValueError(f"cron {expr!r}: step {element!r} must be at least 1")
        if step is not None and not star and end is None:
            # "5/15" means "5-max/15" to some parsers and is an error to others
            raise ValueError(
                f"cron {expr!r}: {element!r} is ambiguous; write a range with a step "
                f"(e.g. {start}-{field.high if field.name != 'day of week' else 6}/{step})"
            )
        suffix = f"/{step}" if step is not None else ""
        if star:
            parts.append("*" + suffix)
            continue
        low = _value(start, field, expr)
        high = _value(end, field, expr) if end is not None else low
        if high < low:
            raise ValueError(f"cron {expr!r}: range {element!r} runs backwards")
        if field.name == "day of week" and high == 7:
            # robfig/cron (KFP) knows only 0-6: spell the days out, Sunday as 0
            days = sorted({d % 7 for d in range(low, high + 1, int(step or 1))})
            parts.append(",".join(str(d) for d in days))
        elif end is None:
            parts.append(f"{low}{suffix}")
        else:
            parts.append(f"{low}-{high}{suffix}")
    return ",".join(parts)


def _check_time_zone(name: str, expr: str) -> str:
    if not name:
        raise ValueError(f"cron {expr!r}: TZ= needs an IANA time zone name (e.g. TZ=Europe/Paris)")
    if not zoneinfo.available_timezones():
        raise RuntimeError(
            "no time zone database on this machine to check the cron's TZ= against "
            "(install the tzdata package)"
        )
    if name not in zoneinfo.available_timezones():
        raise ValueError(f"cron {expr!r}: {name!r} is not an IANA time zone (e.g. Europe/Paris)")
    return name


def parse(expr: str) -> Cron:
    """Checks a user's cron (see the module docstring); ValueError naming the bad part."""
    if not isinstance(expr, str):
        raise ValueError(f"cron must be a string, not {expr!r}")
    text = expr.strip()
    time_zone = ""
    prefix = _TZ_PREFIX.match(text)
    if prefix:
        time_zone = _check_time_zone(prefix.group(1), expr)
        text = prefix.group(2).strip()
    if text.startswith("@"):
        if text.lower() not in _DESCRIPTORS:
            raise ValueError(
                f"cron {expr!r}: {text!r} is not one of {', '.join(sorted(_DESCRIPTORS))}"
            )
        text = _DESCRIPTORS[text.lower()]
    words = text.split()
    if len(words) != 5:
        raise ValueError(
            f"cron {expr!r} has {len(words)} fields; write 5 (minute hour day-of-month month "
            f"day-of-week), optionally after TZ=Area/City (kfpkit adds KFP's seconds field)"
        )
    fields = tuple(_normalise_field(w, f, expr) for w, f in zip(words, _FIELDS, strict=True))
    return Cron(fields=fields, time_zone=time_zone)  # type: ignore[arg-type]
