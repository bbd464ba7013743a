"""The GPU build has the CUDA execution provider and, when a GPU is visible, uses it."""

import glob
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, "providers", providers)
assert "CUDAExecutionProvider" in providers, "this is not a CUDA build of onnxruntime"
if not glob.glob("/dev/nvidia[0-9]*") and not glob.glob("/dev/nvhost-ctrl-gpu"):
    print("SKIP gpu check: no NVIDIA GPU device is visible in this container")
    sys.exit(0)
graph = helper.make_graph(
    [helper.make_node("Relu", ["x"], ["y"])],
    "relu",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = min(model.ir_version, 8)
session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider"])
assert session.get_providers()[0] == "CUDAExecutionProvider", session.get_providers()
(y,) = session.run(None, {"x": np.array([-1, 0, 1, 2], dtype=np.float32)})
assert y.tolist() == [0, 0, 1, 2], y
print("onnxruntime gpu ok")
