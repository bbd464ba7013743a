"""llama-cpp-python loads its library, reports its build and initialises its backend; the
CUDA build must report CUDA and GPU offload. No model is downloaded, so no tokens are
generated (that needs a GGUF model under /data: see the package notes)."""

import glob
import os

import llama_cpp

print("llama_cpp", llama_cpp.__version__)
info = llama_cpp.llama_print_system_info().decode()
print(info)
assert "CPU" in info, "the CPU backend is missing"
offload = bool(llama_cpp.llama_supports_gpu_offload())
print("gpu offload supported:", offload)
if os.path.exists("/usr/local/cuda"):
    assert offload and "CUDA" in info, "llama_cpp:cuda was built without CUDA"
llama_cpp.llama_backend_init()
params = llama_cpp.llama_context_default_params()
assert params.n_ctx >= 0
llama_cpp.llama_backend_free()
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
print("llama_cpp ok")
