"""numpy imports from the chain's environment, is the pinned version, and computes."""

from importlib import metadata
from pathlib import Path

import numpy as np

print("numpy", np.__version__, "from", np.__file__)
assert np.__file__.startswith("/opt/venv/"), "numpy is not in the chain's environment"
pins = Path("/opt/venv/constraints.txt").read_text().splitlines()
assert f"numpy=={metadata.version('numpy')}" in pins, "numpy is not pinned in the chain"
a = np.arange(12, dtype=np.float64).reshape(3, 4)
assert a.sum() == 66.0
assert np.allclose(a @ a.T, np.array([[14, 38, 62], [38, 126, 214], [62, 214, 366]]))
print("numpy ok")
