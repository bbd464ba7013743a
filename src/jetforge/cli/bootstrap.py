"""``jetforge bootstrap``: build a base OS image from a distro mirror, no registry needed."""

from __future__ import annotations

from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option, path_value
from jetforge.core.platform import parse_distro
from jetforge.ops.bootstrap import bootstrap, check_keyring, plan_bootstrap


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "bootstrap",
        help=summary("bootstrap"),
        description="Create a minimal base image from a distro package mirror with "
        "mmdebstrap and import it into the engine.",
    )
    parser.add_argument(
        "--distro", help="distro release, e.g. debian:12 (default: the platform's distro)"
    )
    parser.add_argument("--mirror", metavar="URL", help="package mirror to bootstrap from")
    parser.add_argument("--tag", metavar="IMAGE", help="image name (default: the distro)")
    parser.add_argument(
        "--keyring",
        type=path_value,
        metavar="FILE",
        help="keyring (file or directory) that verifies the mirror, instead of the host's "
        "(default: /usr/share/keyrings/<distro>-archive-keyring.gpg)",
    )
    add_engine_option(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Bootstrap the image and print its name."""
    args = session.args
    distro = parse_distro(args.distro) if args.distro else session.platform.distro
    keyring = str(session.cwd / args.keyring) if args.keyring else None
    plan = plan_bootstrap(distro, args.mirror, args.tag, keyring)
    check_keyring(plan)
    engine = session.engine(args.engine)
    session.note(f"bootstrapping {plan.tag} from {plan.mirror} ({plan.suite})")
    image_id = bootstrap(plan, engine, session.cache_dir / "bootstrap")
    session.note(f"created {plan.tag} ({image_id[:19]})")
    print(plan.tag, file=session.stdout)
    return 0
