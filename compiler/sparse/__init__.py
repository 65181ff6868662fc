"""Sparse-update plans: the plan file (``plan``), new heads and input sizes (``heads``),
channel permutation (``permute``), contribution analysis on the user's data
(``contrib``), the search under an SRAM budget priced by the memory model
(``search``), the end-to-end planner (``planner``) and float transfer learning of a
head (``float_twin``, ``transfer``). May import: ``ir`` to ``memory``.
"""
