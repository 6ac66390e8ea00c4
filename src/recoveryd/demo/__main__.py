"""`python -m recoveryd.demo` runs the demo round trip."""

from recoveryd.demo.run import main

raise SystemExit(main())
