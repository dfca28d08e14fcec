"""Allow ``python -m vmcore_dap`` as an alias of the ``vmcore-dap`` console script."""

from vmcore_dap.cli import main

raise SystemExit(main())
