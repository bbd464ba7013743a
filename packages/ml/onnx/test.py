"""onnx builds, checks, round-trips and evaluates a tiny model (y = x @ w + b)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

print("onnx", onnx.__version__, "opset", onnx.defs.onnx_opset_version())
w = np.arange(6, dtype=np.float32).reshape(3, 2)
b = np.array([1.0, -1.0], dtype=np.float32)
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
    "affine",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model, full_check=True)
again = onnx.load_from_string(model.SerializeToString())
assert again.graph.node[0].op_type == "MatMul"

from onnx.reference import ReferenceEvaluator  # noqa: E402 - onnx >= 1.13

x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
(y,) = ReferenceEvaluator(model).run(None, {"x": x})
assert np.allclose(y, x @ w + b), y
print("onnx ok", y.tolist())
