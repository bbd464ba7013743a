"""Allow ``python -m jetforge``."""

from jetforge.cli.main import entry

entry()
