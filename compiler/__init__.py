"""Compiler from int8 (or float + calibration) neural networks to training firmware.

Front end: ``frontend`` (importers) -> ``ir`` (graph) -> ``quantize`` (PTQ) ->
``reference`` (integer-exact executor, the oracle of the C runtime). ``models`` locates
the real int8 models, ``images`` prepares photos as model input, ``cli`` is
``python -m compiler``.
"""
