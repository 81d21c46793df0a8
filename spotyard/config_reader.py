"""A small reader for nested stack configuration that collects every problem.

Each `Section` reads the keys of one mapping (`spotyard:fleets.workbench.home`),
converts and checks them, and records what is wrong under the full key name.
`close()` reports keys nobody asked for, with a did-you-mean.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, overload

_MISSING = object()


class Problems:
    """Every configuration problem found, each naming its full key."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self) -> str:
        count = len(self.items)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {item}" for item in self.items)
        return f"spotyard configuration has {count} {noun}:\n{lines}"


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (known keys: {', '.join(sorted(known))})"


class Section:
    """Typed access to one configuration mapping, keyed by its full name."""

    def __init__(self, key: str, raw: Any, problems: Problems, separator: str = ".") -> None:
        self.key = key
        self.problems = problems
        self._separator = separator
        self._known: list[str] = []
        if isinstance(raw, Mapping):
            self._raw: Mapping[str, Any] = raw
        else:
            problems.add(key, f"must be a mapping, got {_describe(raw)}")
            self._raw = {}

    def key_of(self, name: str) -> str:
        return f"{self.key}{self._separator}{name}"

    def problem(self, name: str, message: str) -> None:
        self.problems.add(self.key_of(name), message)

    def has(self, name: str) -> bool:
        return self._raw.get(name) is not None

    def _take(self, name: str) -> Any:
        self._known.append(name)
        value = self._raw.get(name, _MISSING)
        return _MISSING if value is None else value

    @overload
    def text(
        self,
        name: str,
        default: str,
        *,
        required: bool = False,
        pattern: str | None = None,
        choices: tuple[str, ...] | None = None,
        check: Callable[[str], str | None] | None = None,
        expected: str = "",
    ) -> str: ...

    @overload
    def text(
        self,
        name: str,
        default: None = None,
        *,
        required: bool = False,
        pattern: str | None = None,
        choices: tuple[str, ...] | None = None,
        check: Callable[[str], str | None] | None = None,
        expected: str = "",
    ) -> str | None: ...

    def text(
        self,
        name: str,
        default: str | None = None,
        *,
        required: bool = False,
        pattern: str | None = None,
        choices: tuple[str, ...] | None = None,
        check: Callable[[str], str | None] | None = None,
        expected: str = "",
    ) -> str | None:
        value = self._take(name)
        if value is _MISSING:
            if required:
                self.problem(name, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(name, f"must be a string, got {_describe(value)}")
            return default
        value = str(value)
        if choices is not None and value not in choices:
            self.problem(name, f"must be one of {', '.join(choices)}, got '{value}'")
            return default
        if pattern is not None and not re.fullmatch(pattern, value):
            self.problem(name, f"must be {expected or 'of the form ' + pattern}, got '{value}'")
            return default
        if check is not None:
            error = check(value)
            if error:
                self.problem(name, error)
                return default
        return value

    @overload
    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int: ...

    @overload
    def integer(
        self, name: str, default: None = None, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None: ...

    def integer(
        self, name: str, default: int | None = None, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """The key as a whole number; `default` when it is absent or wrong (so a reader given a
        default gets an int, and the default is written only there)."""
        value = self._take(name)
        if value is _MISSING:
            return default
        number = _as_int(value)
        if number is None:
            self.problem(name, f"must be a whole number, got {_describe(value)}")
            return default
        if minimum is not None and number < minimum:
            self.problem(name, f"must be at least {minimum}, got {number}")
            return default
        if maximum is not None and number > maximum:
            self.problem(name, f"must be at most {maximum}, got {number}")
            return default
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._take(name)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.problem(name, f"must be true or false, got {_describe(value)}")
        return default

    def texts(
        self, name: str, *, required: bool = False, item: Callable[[str], str | None] | None = None
    ) -> tuple[str, ...]:
        value = self._take(name)
        if value is _MISSING:
            if required:
                self.problem(name, "is required (a non-empty list)")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(name, f"must be a list of strings, got {_describe(value)}")
            return ()
        if required and not value:
            self.problem(name, "must not be empty")
        good = []
        for index, entry in enumerate(value):
            error = item(entry) if item else None
            if error:
                self.problems.add(f"{self.key_of(name)}[{index}]", error)
            else:
                good.append(entry)
        if len(set(value)) != len(value):
            self.problem(name, "has duplicate entries")
        return tuple(good)

    def mapping(self, name: str) -> Mapping[str, Any] | None:
        """The raw mapping under `name`, for sections keyed by user names."""
        value = self._take(name)
        if value is _MISSING:
            return None
        if not isinstance(value, Mapping):
            self.problem(name, f"must be a mapping, got {_describe(value)}")
            return None
        return value

    def raw(self, name: str) -> Any:
        """The value under `name` as written (None when absent), for values checked by the caller."""
        value = self._take(name)
        return None if value is _MISSING else value

    def sections(self, name: str) -> list[Section]:
        """One section per entry of a list of mappings (`ingress: [{port: 443, from: [...]}]`)."""
        value = self._take(name)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.problem(name, f"must be a list of mappings, got {_describe(value)}")
            return []
        return [Section(f"{self.key_of(name)}[{index}]", entry, self.problems) for index, entry in enumerate(value)]

    def child(self, name: str) -> Section | None:
        value = self._take(name)
        if value is _MISSING:
            return None
        return Section(self.key_of(name), value, self.problems)

    def close(self) -> None:
        for name in self._raw:
            if name not in self._known:
                self.problem(name, did_you_mean(name, self._known))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
