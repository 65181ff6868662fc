"""Compile-time autodiff: trainable sets, the backward rules table (op -> gradient
steps), the training program (``program``), the reference trainer that runs a program
on the ``ref`` ops bit-exactly like the device (``trainer``) and the replay of the
device application's streaming policy (``device_replay``). May import: ``ir``,
``quantize``, ``frontend``, ``ref``.
"""
