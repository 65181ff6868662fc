"""Helpers shared by the per-op test files (tests/test_op_*.py)."""
import numpy as np


def calib(n: int = 64, seed: int = 0, hw: int = 16, c: int = 3) -> np.ndarray:
    """Float calibration samples (N, C, H, W) in [0, 1)."""
    return np.random.default_rng(seed).random((n, c, hw, hw), np.float32)


def int8_inputs(g, n: int, seed: int) -> np.ndarray:
    """n random int8 inputs of graph ``g``'s input shape."""
    shape = g.tensors[g.inputs[0]].shape[1:]
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


def export_onnx(model, path, shape=(1, 3, 16, 16), **kw):
    """TorchScript ONNX export with a dynamic batch axis (inputs "x", outputs "y")."""
    import torch
    torch.onnx.export(model, torch.zeros(shape), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False, **kw)
    return path


def quantize_qdq(float_path, qdq_path, samples, act: str = "QInt8"):
    """onnxruntime's static QDQ quantization (per-channel int8 weights) on ``samples``
    (N, C, H, W) fed one at a time as input "x"."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"x": s[None]} for s in samples)

        def get_next(self):
            return next(self.it, None)
    quantize_static(str(float_path), str(qdq_path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=getattr(QuantType, act),
                    weight_type=QuantType.QInt8)
    return qdq_path


def int8_real_outputs(q, x_nchw):
    """The int8 reference run of ``q`` on float inputs (N, C, H, W), dequantized: (real
    outputs, output tensor) for comparing with the float model."""
    from compiler.frontend.common import nchw_to_nhwc
    from compiler.ref import executor as reference
    y = q.tensors[q.outputs[0]]
    got = reference.run(q, reference.quantize_input(q, nchw_to_nhwc(x_nchw)))
    return (np.asarray(got, np.float64) - y.zero_point) * y.scale, y
