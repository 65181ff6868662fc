"""Post-training quantization: a float graph plus calibration data becomes an int8 graph
(BatchNorm folded, per-channel symmetric int8 weights, int32 biases, Q31 requantization,
activations folded into output clamps). ``float_ref`` is the float executor used for
calibration. May import: ``ir``.
"""
