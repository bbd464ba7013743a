"""Allow ``python -m jetforge``."""

from jetforge.cli.entry import entry

entry()
