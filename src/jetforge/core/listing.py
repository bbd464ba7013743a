"""What ``jetforge list`` shows of a catalog (:class:`Listing`): each variant's names and
availability, in name order, and the catalog's definition problems and warnings as lines.

The discovery index keeps a catalog's listing as plain data beside the catalog itself, so
that a warm ``list`` prints without decoding a single variant
(:meth:`jetforge.core.catalog.Catalog.listing` makes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# One variant: its name, why it is unavailable here ("" when it is available) and the
# other names a pattern matches it by (its base name, its aliases).
Row = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Listing:
    """The rows of a catalog's variants in name order (versions as versions), and its
    problems and warnings, each as the line that reports it."""

    rows: tuple[Row, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def match(self, patterns: Sequence[str], *, include_unavailable: bool = False) -> list[Row]:
        """The rows whose name, base name or an alias matches any shell-style pattern, in
        name order (what :meth:`jetforge.core.catalog.Catalog.match` finds)."""
        every = "*" in patterns  # matches any name: the whole listing
        return [
            row
            for row in self.rows
            if (include_unavailable or not row[1]) and (every or _matches(row, patterns))
        ]

    def record(self) -> dict[str, Any]:
        """The listing as plain data."""
        return {
            "rows": [[name, unavailable, list(names)] for name, unavailable, names in self.rows],
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Listing:
        """The listing of :meth:`record`."""
        rows = tuple((str(name), str(why), tuple(names)) for name, why, names in record["rows"])
        return cls(rows, tuple(record["problems"]), tuple(record["warnings"]))


def _matches(row: Row, patterns: Sequence[str]) -> bool:
    names = (row[0], *row[2])
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)
