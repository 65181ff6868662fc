"""Compiler from int8 (or float + calibration) neural networks to firmware that trains.

One sub-package per stage; a stage imports only the stages before it in :data:`STAGES`
(``tests/test_structure.py`` checks it), plus :mod:`compiler.paths` (where templates,
runtime, boards and models live). The compiler never imports ``host``.

- ``ir``: the graph, op definitions with their traits, errors, fixed-point math.
- ``quantize``: post-training quantization (float graph + calibration -> int8 graph).
- ``frontend``: importers (int8 model JSON, ONNX, torch.fx), model lookup, datasets.
- ``ref``: the numpy oracle of the C runtime (forward and gradient ops, executor, input rule).
- ``autodiff``: backward rules, training programs, the reference trainer, device replay.
- ``kernels``: the C kernels as the compiler sees them: one emitter per step kind.
- ``memory``: schedules, fused blocks, forward and training arena plans.
- ``sparse``: sparse-update plans: contribution analysis, search, permutation, heads.
- ``codegen``: renders the templates into C sources and report.json.
- ``target``: boards, firmware build, QEMU / host / serial runners.
- ``cli``: ``tinytrain`` / ``python -m compiler``.

``compiler.api`` (not a stage) is what the commands do as Python functions, for notebooks:
``import_model``, ``load``, ``save``, ``run``, ``build``.
"""

STAGES = ("ir", "quantize", "frontend", "ref", "autodiff", "kernels", "memory", "sparse",
          "codegen", "target", "cli")
