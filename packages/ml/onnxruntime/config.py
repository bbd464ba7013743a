"""onnxruntime:gpu where a CUDA 12 build exists for the platform, onnxruntime:cpu always.

gpu is marked default; where it is unavailable the resolver takes cpu.
"""

JETSON_AI_LAB = "https://pypi.jetson-ai-lab.io"


def configure(package, platform):
    cpu = package.replace(
        name="onnxruntime:cpu",
        build_args={"ORT_PACKAGE": "onnxruntime"},
        tier="e2e",
        notes="`onnxruntime` (CPU execution provider) from PyPI.",
    )
    if platform.is_jetson:
        # Jetson AI Lab publishes onnxruntime-gpu for JetPack 6 with CUDA 12.6 and 12.8.
        requires = ["tegra", "==r36.*", ">=cu12.6", "<=cu12.8"]
        args = {
            "ORT_PACKAGE": "onnxruntime-gpu",
            "ORT_INDEX_URL": f"{JETSON_AI_LAB}/jp6/{platform.cuda_tag}",
        }
        where = "from the Jetson AI Lab index"
    else:
        # PyPI's onnxruntime-gpu: CUDA 12.x with cuDNN 9, x86_64 wheels only.
        requires = ["x86_64", ">=cu12.0", "<cu13.0"]
        args = {"ORT_PACKAGE": "onnxruntime-gpu"}
        where = "from PyPI"
    gpu = package.replace(
        name="onnxruntime:gpu",
        default=True,
        depends=[*package.depends, "cuda", "cudnn"],
        requires=requires,
        build_args=args,
        test=["test.py", "test_gpu.py"],
        tier="plan",
        notes=f"`onnxruntime-gpu` (CUDA execution provider) {where}.",
    )
    return [gpu, cpu]
