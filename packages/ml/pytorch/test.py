"""PyTorch imports from the chain's environment, is a CUDA build, computes on the CPU, and
computes on the GPU when one is visible."""

import glob
import sys

import numpy as np
import torch

print(
    "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version()
)
assert torch.__file__.startswith("/opt/venv/"), torch.__file__
assert torch.version.cuda, "this PyTorch is not a CUDA build"
a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
assert torch.equal(a @ a.T, torch.tensor([[5.0, 14.0], [14.0, 50.0]]))
assert np.array_equal(torch.from_numpy(np.arange(3)).numpy(), np.arange(3))
print("pytorch cpu ok")
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
    sys.exit(0)
assert torch.cuda.is_available(), "a GPU is visible but torch.cuda is not available"
print("device:", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
g = a.cuda()
assert torch.equal((g @ g.T).cpu(), a @ a.T)
conv = torch.nn.Conv2d(1, 1, 3).cuda()
assert conv(torch.ones(1, 1, 8, 8, device="cuda")).shape == (1, 1, 6, 6)
print("pytorch gpu ok")
