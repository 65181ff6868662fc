"""The numpy oracle of the C runtime: integer forward ops (``ops``), gradient ops
(``grad_ops``), the graph executor (``executor``) and the device's input rule
(``inputs``: uint8 pixel -> int8, resize). Every C kernel is bit-exact with these.
May import: ``ir``, ``quantize``, ``frontend``.
"""
