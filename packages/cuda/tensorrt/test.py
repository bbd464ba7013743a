"""TensorRT's Python bindings import from the chain's venv at the expected release; with a
GPU visible, a one-layer network builds into an engine."""

import glob
import os
import shutil
import sys

import tensorrt as trt

expected = os.environ["TENSORRT_VERSION"]
print("tensorrt", trt.__version__, "(expected", expected + ")")
assert trt.__version__.startswith(expected + "."), "unexpected TensorRT release"
assert shutil.which("trtexec"), "trtexec is not on PATH"
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
    sys.exit(0)
logger = trt.Logger(trt.Logger.WARNING)
builder = trt.Builder(logger)
network = builder.create_network(0)
tensor = network.add_input("x", trt.float32, (1, 4))
relu = network.add_activation(tensor, trt.ActivationType.RELU)
network.mark_output(relu.get_output(0))
engine = builder.build_serialized_network(network, builder.create_builder_config())
assert engine is not None and engine.nbytes > 0, "the engine did not build"
print("tensorrt gpu ok")
