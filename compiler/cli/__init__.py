"""The command line ``tinytrain`` (also ``python -m compiler``): the command registry
(``commands``) and one module per command (``inspect``, ``build`` / ``run``, ``plan``),
wired in ``main``. The top stage: may import every other stage, never ``host``.
"""
