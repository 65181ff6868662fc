"""Code generation: renders ``templates/*.j2`` into the model's C sources and
report.json (``generate``), with the training step's context (``train_step``). Holds
layout and wiring only: arithmetic is in the runtime kernels, calls come from
:mod:`compiler.kernels`. May import: ``ir`` to ``sparse``.
"""
