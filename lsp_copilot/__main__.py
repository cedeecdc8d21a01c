"""`python -m lsp_copilot` runs the command line."""

from lsp_copilot.cli import main

raise SystemExit(main())
