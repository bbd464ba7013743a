"""``jetforge show``: everything known about the matching variants."""

from __future__ import annotations

import json
from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_package_options
from jetforge.discover import Variant
from jetforge.errors import UnknownPackageError


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "show",
        help=summary("show"),
    )
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="names or wildcards")
    parser.add_argument("--json", action="store_true", help="print JSON objects")
    add_package_options(parser)
    parser.set_defaults(handler=run)


def variant_json(variant: Variant) -> dict[str, object]:
    """A variant as JSON-ready data (used by ``list --json`` and ``show --json``)."""
    spec = variant.spec
    return {
        "name": spec.name,
        "base_name": spec.base_name,
        "tag": spec.tag,
        "alias": list(spec.alias),
        "group": spec.group,
        "path": str(spec.path),
        "source": str(spec.source),
        "depends": list(spec.depends),
        "requires": list(spec.requires),
        "default": spec.default,
        "build_args": dict(spec.build_args),
        "build_flags": spec.build_flags,
        "dockerfile": spec.dockerfile,
        "test": list(spec.test),
        "docs": read_doc(variant, spec.docs),
        "notes": read_doc(variant, spec.notes),
        "prefix": spec.prefix,
        "postfix": spec.postfix,
        "config": list(spec.config),
        "format": spec.format,
        "buildkit_device": spec.buildkit_device,
        "available": variant.is_available,
        "unavailable_reason": variant.unavailable,
    }


def read_doc(variant: Variant, text: str) -> str:
    """``docs``/``notes`` text, read from the package dir when it names a file there (and
    only there: a name that leads outside, also through a link, is shown as text)."""
    if not text or "\n" in text or len(text) >= 256:
        return text
    candidate = variant.spec.path / text
    try:
        inside = candidate.resolve().is_relative_to(variant.spec.path.resolve())
        if inside and candidate.is_file():
            return candidate.read_text(encoding="utf-8-sig", errors="replace").strip()
    except OSError:
        pass
    return text


def run(session: Session) -> int:
    """Print the matching variants."""
    args = session.args
    catalog = session.catalog
    session.report_problems(each=False)
    patterns = args.patterns or ["*"]
    variants = catalog.match(patterns, include_unavailable=True)
    if not variants:
        raise UnknownPackageError(" ".join(patterns))
    if args.json:
        print(json.dumps([variant_json(v) for v in variants], indent=2), file=session.stdout)
        return 0
    for number, variant in enumerate(variants):
        if number:
            print(file=session.stdout)
        for key, value in variant_json(variant).items():
            if value in ("", [], {}, None, False) and key != "available":
                continue
            if key == "format" and value == "jetforge":
                continue
            if isinstance(value, list):
                value = ", ".join(value)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            print(f"{key + ':':<20}{value}", file=session.stdout)
    return 0
