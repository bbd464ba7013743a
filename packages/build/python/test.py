"""The chain's Python runs from the shared /opt/venv and can build extensions."""

import os
import sys
import sysconfig

print("python", sys.version.split()[0], "at", sys.prefix)
assert sys.prefix == "/opt/venv", f"expected the /opt/venv environment, got {sys.prefix}"
assert os.environ.get("VIRTUAL_ENV") == "/opt/venv"
include = sysconfig.get_paths()["include"]
assert os.path.exists(os.path.join(include, "Python.h")), f"no Python.h in {include}"
assert sum(i * i for i in range(10)) == 285
print("python ok")
