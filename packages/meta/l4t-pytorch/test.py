"""Everything in l4t-pytorch imports together, pip finds no broken requirement, and the
pieces work together: an OpenCV image goes through torchvision on PyTorch."""

import subprocess
import sys

import cv2
import numpy as np
import torch
import torchaudio
import torchvision

print("torch", torch.__version__, "torchvision", torchvision.__version__)
print("torchaudio", torchaudio.__version__, "opencv", cv2.__version__)
subprocess.run([sys.executable, "-m", "pip", "check"], check=True)
image = np.zeros((32, 32, 3), dtype=np.uint8)
cv2.circle(image, (16, 16), 8, (255, 255, 255), -1)
tensor = torchvision.transforms.functional.to_tensor(image)
assert tensor.shape == (3, 32, 32) and float(tensor.max()) == 1.0
print("l4t-pytorch ok")
