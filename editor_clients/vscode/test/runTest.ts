/** Runs test/suite in a real VS Code downloaded by @vscode/test-electron (`npm run test:vscode`; needs the internet). */

import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const extensionDevelopmentPath = path.resolve(__dirname, '..', '..');
  const extensionTestsPath = path.resolve(__dirname, 'suite', 'index');
  const workspace = path.resolve(extensionDevelopmentPath, 'test', 'fixtures', 'workspace');
  // the server is found as in the editor: lspCopilot.server.* settings, `lsp-copilot` on PATH, or python3 -m
  await runTests({ extensionDevelopmentPath, extensionTestsPath, launchArgs: [workspace, '--disable-extensions'], extensionTestsEnv: { HF_HUB_OFFLINE: '1' } });
}

main().catch((error: unknown) => {
  console.error('VS Code tests failed:', error);
  process.exit(1);
});
