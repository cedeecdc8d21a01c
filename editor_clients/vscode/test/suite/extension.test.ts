/** End-to-end in a real VS Code: activation, commands, status bar, and a streamed ghost text equal to the server's. */

import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { CopilotApi } from '../../src/copilot';

const EXTENSION_ID = 'lsp-copilot.lsp-copilot';

async function until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lsp-copilot in VS Code', () => {
  let api: CopilotApi;

  before(async () => {
    const extension = vscode.extensions.getExtension<CopilotApi>(EXTENSION_ID);
    assert.ok(extension, 'extension installed');
    api = await extension.activate();
    await until(() => (api.statusText === 'ready' ? true : undefined), 180_000, 'the server to report ready');
  });

  it('contributes its commands', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['lspCopilot.toggle', 'lspCopilot.trigger', 'lspCopilot.showLog', 'lspCopilot.restartServer']) {
      assert.ok(commands.includes(c), c);
    }
  });

  it('answers an inline completion request with what the server streamed', async () => {
    const doc = await vscode.workspace.openTextDocument({ language: 'python', content: 'def add(a, b):\n    ' });
    await vscode.window.showTextDocument(doc);
    const position = new vscode.Position(1, 4);
    const editor = vscode.window.activeTextEditor;
    assert.ok(editor);
    editor.selection = new vscode.Selection(position, position);
    const context: vscode.InlineCompletionContext = { triggerKind: vscode.InlineCompletionTriggerKind.Invoke, selectedCompletionInfo: undefined };
    const items = await api.provider.provide(doc, position, context, new vscode.CancellationTokenSource().token);
    const stream = api.controller.cache.current(api.client!.code2ProtocolConverter.asUri(doc.uri));
    assert.ok(stream?.done, 'the request finished');
    const shown = items.map((i) => (typeof i.insertText === 'string' ? i.insertText : i.insertText.value));
    assert.deepEqual(shown, stream.items?.map((s) => s.insertText));
  });

  it('toggle switches suggestions off and on', async () => {
    const before = api.enabled;
    await vscode.commands.executeCommand('lspCopilot.toggle');
    assert.equal(api.enabled, !before);
    await vscode.commands.executeCommand('lspCopilot.toggle');
    assert.equal(api.enabled, before);
  });

  it('restarts the server', async () => {
    const old = api.client;
    await vscode.commands.executeCommand('lspCopilot.restartServer');
    assert.notEqual(api.client, old);
    assert.ok(api.client?.isRunning());
  });
});
