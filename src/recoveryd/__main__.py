"""`python -m recoveryd` runs the command line."""

from recoveryd.cli.main import main

raise SystemExit(main())
