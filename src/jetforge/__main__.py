"""Allow ``python -m jetforge``."""

import sys

from jetforge.cli.main import main

sys.exit(main())
