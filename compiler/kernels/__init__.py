"""The C runtime's kernels as the compiler sees them: for each forward step kind and each
backward step class one emitter object with its kernel name, its scratch-size
expression and its C call (``forward``, ``backward``), and the evaluation of scratch
sizes through the runtime's own headers (``table``). Memory planning asks it for
scratch; code generation asks it for calls. May import: ``ir`` to ``autodiff``.
"""
