"""Model importers: each turns a source model into a :class:`compiler.ir.Graph`.

- :mod:`.tte_json`   the real int8 models (JSON + npz), loaded as-is;
- :mod:`.torch_fx`   PyTorch ``nn.Module`` (torch.fx) -> float graph (+ PTQ);
- :mod:`.onnx_model` ONNX float models (+ PTQ) and QDQ int8 models.
"""
