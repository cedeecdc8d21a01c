#!/usr/bin/env bash
# CI entry for the VS Code extension (called from .ci/run): install, compile, lint, unit + integration tests, .vsix.
# Env: LSP_COPILOT_PYTHON, LSP_COPILOT_MODEL, LSP_COPILOT_DRAFT (see test/integration/server.test.ts);
#      SKIP_INTEGRATION=1 runs only the unit tests (e.g. on a machine without the Python environment).
set -euo pipefail
cd "$(dirname "$0")"

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
npm run compile
npm run lint
npm run test:unit
if [ "${SKIP_INTEGRATION:-0}" != "1" ]; then
  npm run test:integration
fi
npm run package
ls -l lsp-copilot.vsix
