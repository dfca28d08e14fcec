"""``python -m vmcore_dap.lsp``: the same as the ``vmcore-dap-lsp`` console script."""

from vmcore_dap.lsp.server import main

raise SystemExit(main())
