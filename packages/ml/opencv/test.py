"""OpenCV imports, filters an image, finds its edges and round-trips it through PNG."""

import glob

import cv2
import numpy as np

print("opencv", cv2.__version__, "numpy", np.__version__)
image = np.zeros((64, 64), dtype=np.uint8)
cv2.rectangle(image, (16, 16), (47, 47), 255, thickness=-1)
edges = cv2.Canny(image, 50, 150)
rows = np.flatnonzero(edges[:, 30])
# The square spans rows 16..47: one edge at its top and one at its bottom, none inside.
assert len(rows) == 2 and abs(rows[0] - 16) <= 1 and abs(rows[1] - 47) <= 1, rows
assert edges[32, 32] == 0
blurred = cv2.GaussianBlur(image, (5, 5), 0)
assert 0 < blurred[16, 16] < 255
ok, png = cv2.imencode(".png", image)
assert ok
assert np.array_equal(cv2.imdecode(png, cv2.IMREAD_GRAYSCALE), image)
cuda_devices = cv2.cuda.getCudaEnabledDeviceCount() if hasattr(cv2, "cuda") else 0
if cuda_devices:
    print("opencv cuda devices:", cuda_devices)
elif glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: this OpenCV build has no CUDA modules")
else:
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
print("opencv ok")
