"""``python -m compiler``: see :mod:`compiler.cli`."""
from .cli import main

raise SystemExit(main())
