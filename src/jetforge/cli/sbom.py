"""``jetforge sbom IMAGE``: print the SPDX document jetforge made when it built IMAGE.

The SBOM is found through the image's id (docs/builds.md, "SBOM"): it is kept in the state
directory when the final image is tagged, and labels cannot be added to an image without
changing its id.
"""

from __future__ import annotations

from typing import Any

from jetforge.cli.commands import summary
from jetforge.cli.session import Session, add_engine_option
from jetforge.core.tags import image_reference
from jetforge.ops.lockstep import read_sbom


def register(commands: Any) -> None:
    """Add the subcommand."""
    parser = commands.add_parser(
        "sbom",
        help=summary("sbom"),
        description="Print the SPDX 2.3 JSON SBOM of IMAGE, a final image jetforge built on "
        "this machine (it is found by the image's id).",
    )
    parser.add_argument("image", metavar="IMAGE", help="a local image: name:tag or id")
    add_engine_option(parser)
    parser.set_defaults(handler=run)


def run(session: Session) -> int:
    """Print the SBOM."""
    args = session.args
    image = str(image_reference(args.image, "sbom: IMAGE"))
    engine = session.engine(args.engine)
    session.stdout.write(read_sbom(engine, session.state_dir, image))
    return 0
