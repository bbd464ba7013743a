"""What an image holds: the collector command run inside it, and its output as a value.

One small shell script per image lists its Debian/Ubuntu packages (``dpkg-query``), the
Python distributions of every ``python3`` on ``PATH`` (``importlib.metadata``) with the
file records ``jetforge-pip-install`` keeps for what it installed (the sha256 and URL of
each file pip got, under ``<environment>/share/jetforge/pip/``), and the source records
packages leave under ``/usr/share/jetforge/sources/`` (the convention of docs/builds.md).
It tolerates images without dpkg or Python. Its output is tab-separated lines, parsed
here; the difference between a stage's inventory and its parent's is what the stage
installed. Everything here is pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

SOURCES_DIR = "/usr/share/jetforge/sources"
PIP_RECORDS = "share/jetforge/pip"  # under an environment's sys.prefix
HEADER = "jetforge-inventory\t1"

# Python 3 only; no single quotes (the script quotes it with them). Each environment
# (sys.prefix) is printed once with its interpreter, then its distributions and the file
# records of jetforge-pip-install.
_PYTHON = (
    "import glob, json, os, sys\n"
    "try:\n"
    "    from importlib import metadata\n"
    "except ImportError:\n"
    "    metadata = None\n"
    'print("python", sys.executable, "%d.%d.%d" % sys.version_info[:3], sys.prefix, sep="\\t")\n'
    "for found in (metadata.distributions() if metadata else ()):\n"
    '    name = found.metadata["Name"]\n'
    "    if name:\n"
    '        print("pypi", name, found.version, sys.prefix, sep="\\t")\n'
    f'for path in sorted(glob.glob(os.path.join(sys.prefix, "{PIP_RECORDS}", "*.json"))):\n'
    "    try:\n"
    "        with open(path) as stream:\n"
    "            record = json.load(stream)\n"
    '        fields = [str(record.get(key, "")) for key in ("name", "version", "sha256", "url")]\n'
    "    except (OSError, ValueError, AttributeError):\n"
    "        continue\n"
    '    if all(fields[:3]) and not any(c in "".join(fields) for c in "\\t\\n"):\n'
    '        print("pipfile", *fields, sys.prefix, sep="\\t")\n'
)

# POSIX sh: also busybox's. Every probe may fail; the script always ends with exit 0, so
# a non-zero exit means the engine could not run it (no sh in the image).
COLLECTOR = f"""printf '{HEADER}\\n'
if [ -r /etc/os-release ]; then
  (. /etc/os-release; printf 'os\\t%s\\t%s\\n' "${{ID:-}}" "${{VERSION_ID:-}}")
fi
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f 'deb\\t${{Status}}\\t${{Package}}\\t${{Version}}\\t${{Architecture}}\\n' \\
    2>/dev/null
fi
code='{_PYTHON}'
seen=' '
saved_ifs=$IFS
IFS=:
set -f
for dir in $PATH; do
  IFS=$saved_ifs
  set +f
  for program in "$dir"/python3 "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9]; do
    [ -x "$program" ] && [ -f "$program" ] || continue
    real=$(readlink -f "$program" 2>/dev/null || echo "$program")
    case "$seen" in *" $dir:$real "*) continue ;; esac
    seen="$seen$dir:$real "
    "$program" -c "$code" 2>/dev/null
  done
done
for file in {SOURCES_DIR}/*.json; do
  [ -f "$file" ] || continue
  printf 'source\\t%s\\t' "$file"
  tr '\\n\\r\\t' '   ' < "$file"
  echo
done
exit 0
"""


def collector_argv() -> tuple[str, ...]:
    """The argv of the collector after ``--entrypoint sh`` (the image's own entrypoint
    would otherwise wrap it)."""
    return ("-c", COLLECTOR)


@dataclass(frozen=True, slots=True)
class Deb:
    """One installed Debian/Ubuntu package."""

    name: str
    version: str
    architecture: str


@dataclass(frozen=True, slots=True)
class Distribution:
    """One Python distribution in one environment (``sys.prefix``); ``sha256`` and
    ``url`` of the file pip installed it from, when ``jetforge-pip-install`` recorded them."""

    name: str
    version: str
    environment: str
    sha256: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class Interpreter:
    """One Python interpreter found on ``PATH``."""

    path: str
    version: str
    environment: str


@dataclass(frozen=True, slots=True)
class Source:
    """A source archive or git commit a package reported fetching (one file under
    ``/usr/share/jetforge/sources/``)."""

    file: str
    name: str
    url: str
    sha256: str = ""
    commit: str = ""


@dataclass(frozen=True, slots=True)
class Inventory:
    """What one image holds (or, after :func:`installed`, what a stage added).

    ``problems`` names the source records that do not follow the convention."""

    os_id: str = ""
    os_version: str = ""
    debs: tuple[Deb, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    interpreters: tuple[Interpreter, ...] = ()
    sources: tuple[Source, ...] = ()
    problems: tuple[str, ...] = ()


def is_inventory(text: str) -> bool:
    """Whether ``text`` is the collector's output (it starts with the header line)."""
    return any(line == HEADER for line in text.splitlines()[:50])


def parse_inventory(text: str) -> Inventory:
    """The collector's output as a value; lines it does not know (engine messages,
    warnings) are left out. Entries are sorted and unique."""
    os_id = os_version = ""
    debs: set[Deb] = set()
    distributions: set[Distribution] = set()
    interpreters: dict[str, Interpreter] = {}
    files: dict[tuple[str, str, str], tuple[str, str]] = {}
    sources: dict[str, Source] = {}
    problems: list[str] = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "os":
            os_id, os_version = [*fields, ""][:2]
        elif kind == "deb" and len(fields) >= 3:
            status, name, version = fields[:3]
            architecture = fields[3] if len(fields) > 3 else ""
            if status.split()[-1:] == ["installed"] and name and version:
                debs.add(Deb(name, version, architecture))
        elif kind == "python" and len(fields) >= 3:
            path, version, environment = fields[:3]
            interpreters.setdefault(environment, Interpreter(path, version, environment))
        elif kind == "pypi" and len(fields) >= 3:
            name, version, environment = fields[:3]
            distributions.add(Distribution(name, version, environment))
        elif kind == "pipfile" and len(fields) >= 5:
            name, version, sha256, url, environment = fields[:5]
            files[(environment, canonical_name(name), version)] = (sha256, url)
        elif kind == "source" and len(fields) >= 2:
            path, body = fields[0], "\t".join(fields[1:])
            source, problem = _parse_source(path, body)
            if source is not None:
                sources[path] = source
            else:
                problems.append(problem)
    return Inventory(
        os_id=os_id,
        os_version=os_version,
        debs=tuple(sorted(debs, key=_deb_key)),
        distributions=tuple(
            sorted((_with_file(found, files) for found in distributions), key=_distribution_key)
        ),
        interpreters=tuple(sorted(interpreters.values(), key=lambda i: (i.environment, i.path))),
        sources=tuple(sources[path] for path in sorted(sources)),
        problems=tuple(problems),
    )


def installed(image: Inventory, parent: Inventory) -> tuple[Inventory, Inventory]:
    """What an image added or changed relative to its parent's inventory, and what it
    removed (by name: the removed entries as the parent had them)."""
    added = Inventory(
        os_id=image.os_id,
        os_version=image.os_version,
        debs=_new(image.debs, parent.debs),
        distributions=_new(image.distributions, parent.distributions),
        interpreters=_new(image.interpreters, parent.interpreters),
        sources=_new(image.sources, parent.sources),
        problems=tuple(problem for problem in image.problems if problem not in parent.problems),
    )
    have_debs = {_deb_key(deb)[:2] for deb in image.debs}
    have_distributions = {_distribution_key(d)[:2] for d in image.distributions}
    removed = Inventory(
        debs=tuple(deb for deb in parent.debs if _deb_key(deb)[:2] not in have_debs),
        distributions=tuple(
            found
            for found in parent.distributions
            if _distribution_key(found)[:2] not in have_distributions
        ),
    )
    return added, removed


_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A Python distribution's normalised name (PEP 503): ``Foo_Bar`` → ``foo-bar``.
    (What ``packaging.utils.canonicalize_name`` does, without importing ``packaging.tags``
    with it: a no-op build's start-up time.)"""
    return _SEPARATORS.sub("-", name).lower()


def _with_file(
    found: Distribution, files: dict[tuple[str, str, str], tuple[str, str]]
) -> Distribution:
    """``found`` with the sha256 and URL of its file, when a record has them."""
    file = files.get(_distribution_key(found))
    return replace(found, sha256=file[0], url=file[1]) if file else found


def _parse_source(path: str, body: str) -> tuple[Source | None, str]:
    where = f"{path}: a source record"
    try:
        data = json.loads(body)
    except ValueError as error:
        return None, f"{where} is not JSON ({error.args[0].split(':')[0]})"
    if not isinstance(data, dict):
        return None, f"{where} must be a JSON object"
    text = {key: value for key, value in data.items() if isinstance(value, str) and value}
    missing = [key for key in ("name", "url") if key not in text]
    if missing or not ("sha256" in text or "commit" in text):
        wanted = ", ".join(missing + ([] if "sha256" in text or "commit" in text else ["sha256"]))
        return None, f'{where} lacks {wanted} (it needs "name", "url" and "sha256" or "commit")'
    if not all(value.isprintable() for value in text.values()):
        return None, f"{where} holds a control character (a newline?) in a value"
    if "sha256" in text and not re.fullmatch("[0-9a-f]{64}", text["sha256"]):
        shown = repr(text["sha256"][:70])
        return None, f'{where} has "sha256" {shown}, not 64 lowercase hex digits'
    return Source(
        path, text["name"], text["url"], text.get("sha256", ""), text.get("commit", "")
    ), ""


_T = TypeVar("_T", Deb, Distribution, Interpreter, Source)


def _new(items: Iterable[_T], before: Iterable[_T]) -> tuple[_T, ...]:
    seen = set(before)
    return tuple(item for item in items if item not in seen)


def _deb_key(deb: Deb) -> tuple[str, str, str]:
    return (deb.name, deb.architecture, deb.version)


def _distribution_key(found: Distribution) -> tuple[str, str, str]:
    return (found.environment, canonical_name(found.name), found.version)
