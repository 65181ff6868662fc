"""Boards and firmware: board descriptions (``boards/<name>/board.mk``), the firmware
build with its memory report and budget check (``firmware``), firmware from a plan file
(``from_plan``) and the runners that execute firmware on QEMU, the host build or a
serial port (``runner``). May import every lower stage.
"""
