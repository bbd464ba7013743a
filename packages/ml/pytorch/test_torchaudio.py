"""torchaudio matches the chain's PyTorch (pip's metadata agrees) and resamples a tone."""

import math
import subprocess
import sys

import torch
import torchaudio
import torchaudio.functional as F

print("torchaudio", torchaudio.__version__, "torch", torch.__version__)
subprocess.run([sys.executable, "-m", "pip", "check"], check=True)
rate = 16000
t = torch.arange(rate) / rate
tone = torch.sin(2 * math.pi * 440 * t).unsqueeze(0)
half = F.resample(tone, rate, rate // 2)
assert half.shape == (1, rate // 2), half.shape
spectrum = torch.fft.rfft(half[0]).abs()
peak = int(spectrum.argmax()) * (rate // 2) / half.shape[1]
assert abs(peak - 440) < 2, peak
print("torchaudio ok")
