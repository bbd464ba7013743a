"""The chain's Python is the distro's Python 3 running from the shared /opt/venv."""

import os
import sys
import sysconfig

print("python", sys.version.split()[0], "at", sys.prefix)
assert sys.prefix == "/opt/venv", f"expected the /opt/venv environment, got {sys.prefix}"
assert os.environ.get("VIRTUAL_ENV") == "/opt/venv"
include = sysconfig.get_paths()["include"]
assert os.path.exists(os.path.join(include, "Python.h")), f"no Python.h in {include}"
print("python ok")
