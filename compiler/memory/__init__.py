"""Memory planning: the forward schedule (steps, fused inverted-residual blocks), the
static arena of the forward pass (``schedule``) and of the whole training step with
saved tensors, masks, gradients and scratch (``training``), and which frozen-prefix
features a device history buffer stores. May import: ``ir`` to ``kernels``.
"""
