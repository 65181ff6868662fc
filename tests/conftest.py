"""Shared pytest setup. The packages ``compiler`` and ``host`` are installed (``pip install
-e .``, done by ``make setup``); pytest.ini puts ``tests/`` on the path for the test helpers."""
