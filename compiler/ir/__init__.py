"""The intermediate representation: the graph (tensors, nodes, quantization parameters),
the op definitions with their traits (:mod:`compiler.ir.ops`: has parameters, ends in a
clamp, passes quantization through, channel-wise, conv kind), the error classes every
stage raises, fixed-point math (Q31 multipliers, rounding) and the graph file format.
The bottom stage: it imports nothing from the compiler except :mod:`compiler.paths`.
"""
