"""torchvision matches the chain's PyTorch (pip's metadata agrees) and its ops compute;
on a visible GPU, NMS runs there too."""

import glob
import subprocess
import sys

import torch
import torchvision
from torchvision.ops import nms

print("torchvision", torchvision.__version__, "torch", torch.__version__)
subprocess.run([sys.executable, "-m", "pip", "check"], check=True)
boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=torch.float32)
scores = torch.tensor([0.9, 0.8, 0.7])
assert nms(boxes, scores, 0.5).tolist() == [0, 2]
image = torch.rand(3, 32, 32)
resized = torchvision.transforms.functional.resize(image, [16, 16], antialias=True)
assert resized.shape == (3, 16, 16)
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
    sys.exit(0)
assert nms(boxes.cuda(), scores.cuda(), 0.5).tolist() == [0, 2]
print("torchvision gpu ok")
