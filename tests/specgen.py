"""Random int8 models in the real models' JSON format (mbv2 family: first conv, inverted
residual blocks with optional pointwise1 / residual, optional feature mix, pool,
classifier), for tests that must hold on shapes nobody hand-picked."""
from __future__ import annotations

import numpy as np

from compiler.frontend.tte_json import from_spec


class _Spec:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.arrays: dict[str, np.ndarray] = {}

    def conv(self, path, cin, cout, k, stride, groups, in_hw, xq, relu=None):
        rng = self.rng
        relu = bool(rng.integers(0, 2)) if relu is None else relu
        yq = (float(rng.uniform(0.02, 0.1)), -128 if relu else int(rng.integers(-20, 20)))
        w = rng.integers(-127, 128, size=(cout, cin // groups, k, k)).astype(np.int8)
        fan = (cin // groups) * k * k
        w_scales = (rng.uniform(0.5, 1.5, cout) / (127 * np.sqrt(fan)) * 3).astype(np.float32)
        bias = rng.integers(-2000, 2000, cout).astype(np.int32)
        keys = {}
        for name, arr in (("weight", w), ("bias", bias), ("w_scales", w_scales)):
            key = f"{path}/params/{name}"
            self.arrays[key] = arr
            keys[name] = {"array": key, "dtype": str(arr.dtype), "shape": list(arr.shape)}
        out_hw = (in_hw + 2 * ((k - 1) // 2) - k) // stride + 1
        entry = {"in_channel": cin, "out_channel": cout, "in_shape": in_hw, "out_shape": out_hw,
                 "kernel_size": [k, k], "stride": stride, "groups": groups, "act": None,
                 "depthwise": groups > 1,
                 "params": {**keys, "x_scale": xq[0], "x_zero": xq[1], "y_scale": yq[0],
                            "y_zero": yq[1]}}
        return entry, yq, out_hw


def random_spec(rng: np.random.Generator, hw: int = 16, n_blocks: int = 3, classes: int = 10,
                max_c: int = 24) -> tuple[dict, dict]:
    s = _Spec(rng)
    xq = (1 / 127.5, 0)
    c = int(rng.integers(3, 9))
    first, q, hw_ = s.conv("first_conv", 3, c, 3, int(rng.integers(1, 3)), 1, hw, xq)
    blocks = []
    for i in range(n_blocks):
        block_in_q, block_c = q, c
        b = {"pointwise1": None, "residual": None, "se": None}
        cexp = c
        if rng.integers(0, 3):
            cexp = int(rng.integers(c, max_c + 1))
            b["pointwise1"], q, _ = s.conv(f"blocks/{i}/pointwise1", c, cexp, 1, 1, 1, hw_, q)
        k = int(rng.choice([3, 3, 5, 7]))
        stride = int(rng.choice([1, 1, 2])) if hw_ >= 4 else 1
        b["depthwise"], q, hw2 = s.conv(f"blocks/{i}/depthwise", cexp, cexp, k, stride, cexp, hw_, q)
        cout = c if (stride == 1 and rng.integers(0, 2)) else int(rng.integers(2, max_c + 1))
        b["pointwise2"], q, _ = s.conv(f"blocks/{i}/pointwise2", cexp, cout, 1, 1, 1, hw2, q,
                                       relu=False)
        if stride == 1 and cout == block_c:
            yq = (float(rng.uniform(0.03, 0.12)), int(rng.integers(-10, 10)))
            b["residual"] = {"params": {"x_scale": block_in_q[0], "x_zero": block_in_q[1],
                                        "y_scale": yq[0], "y_zero": yq[1]}}
            q = yq
        blocks.append(b)
        c, hw_ = cout, hw2
    mix = None
    if rng.integers(0, 2):
        cm = int(rng.integers(4, max_c + 1))
        mix, q, _ = s.conv("feature_mix", c, cm, 1, 1, 1, hw_, q)
        c = cm
    cls, _, _ = s.conv("classifier", c, classes, 1, 1, 1, 1, q, relu=False)
    spec = {"format": "tte-int8-mbv2-family/1", "input": {"layout": "NCHW", "shape": [1, 3, hw, hw]},
            "first_conv": first, "blocks": blocks, "feature_mix": mix, "classifier": cls}
    return spec, s.arrays


def random_graph(seed: int, **kw):
    spec, arrays = random_spec(np.random.default_rng(seed), **kw)
    return from_spec(spec, arrays, name=f"random{seed}")
