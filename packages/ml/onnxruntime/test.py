"""ONNX Runtime runs a tiny model (y = x @ w + b) on the CPU and gets the right answer."""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

print("onnxruntime", ort.__version__, "providers", ort.get_available_providers())
w = np.arange(6, dtype=np.float32).reshape(3, 2)
b = np.array([1.0, -1.0], dtype=np.float32)
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
    "affine",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
    initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = min(model.ir_version, 8)  # readable by older runtimes too
session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], dtype=np.float32)
(y,) = session.run(None, {"x": x})
assert np.allclose(y, x @ w + b), y
print("onnxruntime ok", y.tolist())
