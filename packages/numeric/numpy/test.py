"""numpy imports from the chain's environment and computes correctly."""

import numpy as np

print("numpy", np.__version__, "from", np.__file__)
assert np.__file__.startswith("/opt/venv/"), "numpy is not in the chain's environment"
a = np.arange(12, dtype=np.float64).reshape(3, 4)
assert a.sum() == 66.0
assert np.allclose(a @ a.T, np.array([[14, 38, 62], [38, 126, 214], [62, 214, 366]]))
print("numpy ok")
