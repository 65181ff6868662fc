"""``python -m compiler``: see :mod:`compiler.cli.main`."""
from compiler.cli.main import main

raise SystemExit(main())
