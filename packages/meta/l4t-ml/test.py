"""Everything in l4t-ml imports together and pip finds no broken requirement."""

import subprocess
import sys

import jupyterlab
import onnxruntime
import pandas
import sklearn
import torch

print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)
print("jupyterlab", jupyterlab.__version__, "scikit-learn", sklearn.__version__)
print("pandas", pandas.__version__)
subprocess.run([sys.executable, "-m", "pip", "check"], check=True)
frame = pandas.DataFrame({"x": torch.arange(4).tolist()})
assert frame["x"].sum() == 6
print("l4t-ml ok")
