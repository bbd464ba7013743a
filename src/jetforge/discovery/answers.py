"""A config script's variants as the script worker sends them: plain data (the records of
:func:`jetforge.discovery.records.spec_record`), checked field by field when they arrive.

The worker's pipe is open to the scripts it runs: a script can write a line of its own
into it. So what comes back is data from an untrusted process: never unpickled, never
run, and a record of any other shape is the directory's definition error, not an
internal error of the whole command.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_args

from jetforge.core.spec import PackageFormat, PackageSpec
from jetforge.discovery.records import spec_record

_FIELDS = {item.name: item for item in dataclasses.fields(PackageSpec)}
_FORMATS = get_args(PackageFormat)


class MalformedAnswerError(ValueError):
    """An answer that is not a list of spec records."""


def specs_answer(specs: list[PackageSpec]) -> list[dict[str, Any]]:
    """What the worker sends for ``specs``."""
    return [spec_record(spec) for spec in specs]


def answered_specs(answer: object) -> list[PackageSpec]:
    """The specs of an answer's records, each field checked against its type."""
    if not isinstance(answer, list):
        raise MalformedAnswerError("not a list of variants")
    return [_spec(record) for record in answer]


def _spec(record: object) -> PackageSpec:
    if not isinstance(record, dict) or not {"name", "path", "source"} <= record.keys():
        raise MalformedAnswerError("a variant that is not an object with name, path, source")
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name not in _FIELDS:
            raise MalformedAnswerError(f"a variant with an unknown field '{name}'")
        values[name] = _value(name, value)
    return PackageSpec(**values)


def _value(name: str, value: object) -> object:
    default = _FIELDS[name].default
    if name in ("path", "source"):
        taken: object = Path(value) if isinstance(value, str) else None
    elif name == "build_args":
        pairs = value if isinstance(value, list) and all(map(_is_pair, value)) else None
        taken = None if pairs is None else tuple((key, text) for key, text in pairs)
    elif name == "format":
        taken = value if value in _FORMATS else None
    elif default == ():
        words = value if isinstance(value, list) else None
        taken = (
            tuple(words) if words is not None and all(isinstance(v, str) for v in words) else None
        )
    elif name == "dockerfile" or isinstance(default, str) or name == "name":
        taken = value if isinstance(value, str) else None
    else:
        taken = value if isinstance(value, bool) and isinstance(default, bool) else None
    if taken is None and not (name == "dockerfile" and value is None):
        raise MalformedAnswerError(f"a variant whose '{name}' is not of its type")
    return taken


def _is_word(word: object) -> bool:
    return isinstance(word, str)


def _is_pair(pair: object) -> bool:
    return isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
