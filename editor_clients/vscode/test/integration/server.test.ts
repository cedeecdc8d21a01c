/**
 * Integration test: the real Python server over stdio, driven by a vscode-languageserver-protocol client that sends
 * what the extension sends (streaming opt-in, settings pulled by the server, inlineCompletion, $/cancelRequest).
 *
 * Environment: LSP_COPILOT_PYTHON (interpreter; default <repo>/.venv/bin/python, else python3), LSP_COPILOT_REPO
 * (repository root; default three levels above this package), LSP_COPILOT_MODEL / LSP_COPILOT_DRAFT (model dirs;
 * default the embedded models, else a copy of the newest training checkpoint in <repo>/runs/target).
 */

import * as assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CancellationTokenSource,
  ClientCapabilities,
  ConfigurationParams,
  InitializeResult,
  ProtocolConnection,
  StreamMessageReader,
  StreamMessageWriter,
  createProtocolConnection,
} from 'vscode-languageserver-protocol/node';
import { InlineCompletionChunk, InlineCompletionParams, InlineCompletionResult, Methods, ServerStatus, resultItems } from '../../src/core/protocol';
import { initializationOptions, serverSettings } from '../../src/core/settings';

const PACKAGE_DIR = path.resolve(__dirname, '..', '..', '..');
const REPO = process.env.LSP_COPILOT_REPO ?? path.resolve(PACKAGE_DIR, '..', '..');
const READY_TIMEOUT_MS = 180_000;

/** The settings tree VS Code sends by default: package.json's contributed defaults, nested by dots. */
function contributedDefaults(): Record<string, unknown> {
  const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { default: unknown }> } };
  };
  const tree: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(manifest.contributes.configuration.properties)) {
    const parts = key.split('.').slice(1);
    let node = tree;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = prop.default;
  }
  return tree;
}

/** Defaults plus what makes the test deterministic and streaming visible on a shared CPU. */
function testSettings(): Record<string, unknown> {
  const tree = contributedDefaults();
  const completion = tree.completion as Record<string, unknown>;
  Object.assign(completion, { maxTokens: 96, temperature: 0, timeLimitMs: 30_000, streamIntervalMs: 1, waitForModelMs: 60_000, multiline: 'always' });
  return tree;
}

function pythonPath(): string {
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  return process.env.LSP_COPILOT_PYTHON ?? (fs.existsSync(venv) ? venv : 'python3');
}

/** --model/--draft arguments: env, embedded (no arguments), or a copy of the training checkpoint. */
function modelArgs(tmp: string): string[] {
  const args: string[] = [];
  if (process.env.LSP_COPILOT_MODEL) {
    args.push('--model', process.env.LSP_COPILOT_MODEL);
    if (process.env.LSP_COPILOT_DRAFT) {
      args.push('--draft', process.env.LSP_COPILOT_DRAFT);
    }
    return args;
  }
  if (fs.existsSync(path.join(REPO, 'lsp_copilot', 'models', 'target', 'config.json'))) {
    return args;
  }
  const checkpoint = path.join(REPO, 'runs', 'target');
  if (fs.existsSync(path.join(checkpoint, 'config.json')) && fs.readdirSync(checkpoint).some((f) => f.endsWith('.safetensors'))) {
    // the trainer rewrites this directory every few minutes: load a private copy
    const copy = path.join(tmp, 'model');
    fs.cpSync(checkpoint, copy, { recursive: true });
    return ['--model', copy];
  }
  throw new Error(`no model: set LSP_COPILOT_MODEL, or ship ${REPO}/lsp_copilot/models/target`);
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The client capabilities the extension's language client announces, as far as this server reads them. */
const CAPABILITIES: ClientCapabilities = {
  general: { positionEncodings: ['utf-16'] },
  window: { workDoneProgress: true, showMessage: {} },
  workspace: {
    configuration: true,
    workspaceFolders: true,
    didChangeConfiguration: { dynamicRegistration: true },
    didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
  },
  textDocument: {
    synchronization: { dynamicRegistration: true, didSave: true, willSave: true, willSaveWaitUntil: true },
    inlineCompletion: { dynamicRegistration: true },
    completion: { dynamicRegistration: true, completionItem: { snippetSupport: true } },
  },
};

const SOURCE = [
  'import math',
  '',
  '',
  'def mean(xs):',
  '    """Return the arithmetic mean of xs."""',
  '    return sum(xs) / len(xs)',
  '',
  '',
  'def stdev(xs):',
  '    """Return the population standard deviation of xs."""',
  '    m = mean(xs)',
  '    ',
  '',
].join('\n');
const CURSOR = { line: 11, character: 4 };

/** Everything the server sent us, in arrival order. */
interface Recorded {
  kind: 'chunk' | 'status' | 'showMessage' | 'configuration';
  params: unknown;
}

describe('lsp-copilot server (integration)', function () {
  this.timeout(READY_TIMEOUT_MS + 60_000);

  let tmp: string;
  let server: ChildProcessWithoutNullStreams;
  let connection: ProtocolConnection;
  let stderr = '';
  let exitCode: number | null | undefined;
  const events: Recorded[] = [];
  let workspace: string;
  let capabilities: InitializeResult['capabilities'] | undefined;
  /** Set once the model is loaded; the completion tests fail at once without it instead of timing out. */
  let ready = false;
  let uri: string;
  let version = 1;

  const chunks = (): InlineCompletionChunk[] => events.filter((e) => e.kind === 'chunk').map((e) => e.params as InlineCompletionChunk);
  const statuses = (): ServerStatus[] => events.filter((e) => e.kind === 'status').map((e) => e.params as ServerStatus);

  function inlineParams(position: { line: number; character: number }, docUri = uri): InlineCompletionParams {
    return { textDocument: { uri: docUri }, position, context: { triggerKind: 2 } };
  }

  /** Open a fresh copy of SOURCE: the server remembers suggestions per document text and offset. */
  async function openCopy(name: string): Promise<string> {
    const file = path.join(workspace, name);
    fs.writeFileSync(file, SOURCE);
    const docUri = pathToFileURL(file).toString();
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri: docUri, languageId: 'python', version: 1, text: SOURCE } });
    return docUri;
  }

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsp-copilot-vscode-'));
    workspace = path.join(tmp, 'ws');
    fs.mkdirSync(workspace);
    fs.writeFileSync(path.join(workspace, 'stats.py'), SOURCE);
    uri = pathToFileURL(path.join(workspace, 'stats.py')).toString();

    const args = ['-m', 'lsp_copilot', 'serve', ...modelArgs(tmp), '--device', 'cpu', '--log-file', path.join(tmp, 'server.log')];
    server = spawn(pythonPath(), args, {
      cwd: REPO,
      env: { ...process.env, PYTHONPATH: [REPO, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter), HF_HUB_OFFLINE: '1' },
    });
    server.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    server.on('exit', (code) => (exitCode = code));

    connection = createProtocolConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
    connection.onRequest('workspace/configuration', (params: ConfigurationParams) => {
      events.push({ kind: 'configuration', params });
      // the extension's middleware: the lspCopilot tree without the client-only keys
      return params.items.map((item) => (item.section === 'lspCopilot' ? serverSettings(testSettings()) : null));
    });
    connection.onRequest('client/registerCapability', () => null);
    connection.onRequest('client/unregisterCapability', () => null);
    connection.onRequest('window/workDoneProgress/create', () => null);
    connection.onNotification(Methods.chunk, (params: unknown) => {
      events.push({ kind: 'chunk', params });
    });
    connection.onNotification(Methods.status, (params: unknown) => {
      events.push({ kind: 'status', params });
    });
    connection.onNotification('window/showMessage', (params: unknown) => {
      events.push({ kind: 'showMessage', params });
    });
    connection.onNotification('window/logMessage', () => undefined);
    connection.onNotification('$/progress', () => undefined);
    connection.onNotification('textDocument/publishDiagnostics', () => undefined);
    connection.listen();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.error(`--- server stderr (tail) ---\n${stderr.slice(-4000)}`);
    }
  });

  after(function () {
    if (exitCode === undefined) {
      server.kill();
    }
    connection?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('initializes with inline completion and incremental sync', async () => {
    const init: InitializeResult = await connection.sendRequest('initialize', {
      processId: process.pid,
      clientInfo: { name: 'Visual Studio Code', version: '1.91.0' },
      rootUri: pathToFileURL(path.join(tmp, 'ws')).toString(),
      workspaceFolders: [{ uri: pathToFileURL(path.join(tmp, 'ws')).toString(), name: 'ws' }],
      capabilities: CAPABILITIES,
      initializationOptions: initializationOptions(testSettings()),
    });
    await connection.sendNotification('initialized', {});
    capabilities = init.capabilities;
    const sync = capabilities.textDocumentSync;
    const change = typeof sync === 'object' ? sync.change : sync;
    assert.equal(change, 2, 'incremental document sync');
  });

  it('advertises inlineCompletionProvider (docs/protocol.md; the extension does not depend on it)', () => {
    assert.ok(capabilities?.inlineCompletionProvider, `capabilities: ${JSON.stringify(capabilities)}`);
  });

  it('pulls the lspCopilot settings and accepts every key the extension contributes', async () => {
    const pulled = await waitFor(() => events.find((e) => e.kind === 'configuration'), 30_000, 'workspace/configuration');
    const items = (pulled.params as ConfigurationParams).items;
    assert.ok(items.some((i) => i.section === 'lspCopilot'), JSON.stringify(items));
    await sleep(500);
    const complaints = events.filter((e) => e.kind === 'showMessage' && ((e.params as { type: number }).type <= 2));
    assert.deepEqual(complaints.map((e) => e.params), [], 'the server warned about our settings');
  });

  it('reports loading then ready with the model name, and answers the status request', async () => {
    await waitFor(() => statuses().find((s) => s.state === 'ready' || s.state === 'error'), READY_TIMEOUT_MS, 'status ready');
    const last = statuses()[statuses().length - 1];
    assert.equal(last.state, 'ready', JSON.stringify(statuses()));
    ready = true;
    assert.ok(last.model.length > 0, 'model name');
    const full: ServerStatus = await connection.sendRequest(Methods.status, {});
    assert.equal(full.state, 'ready');
    assert.equal(typeof full.device, 'string');
    assert.equal(typeof full.requests, 'number');
  });

  it('streams growing chunks that end in a done chunk equal to the response', async () => {
    assert.ok(ready, 'the server never reported ready (see the status test)');
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version, text: SOURCE } });
    const before = events.length;
    const result: InlineCompletionResult = await connection.sendRequest(Methods.inlineCompletion, inlineParams(CURSOR));
    const mine = events.slice(before).filter((e) => e.kind === 'chunk').map((e) => e.params as InlineCompletionChunk);
    const items = resultItems(result);
    assert.equal(items.length, 1, `one suggestion (numSuggestions = 1): ${JSON.stringify(result)}`);
    const insertText = items[0].insertText as string;
    assert.ok(insertText.length > 0, 'a non-empty suggestion');
    assert.ok(mine.length >= 2, `streamed in several chunks, got ${JSON.stringify(mine)}`);
    for (const c of mine) {
      assert.deepEqual([c.uri, c.version, c.position], [uri, version, CURSOR]);
      assert.equal(c.requestId, mine[0].requestId);
    }
    const last = mine[mine.length - 1];
    assert.equal(last.done, true);
    assert.equal(last.text, insertText, 'the done chunk equals the response');
    assert.ok(mine.slice(0, -1).every((c) => !c.done), 'exactly one done chunk, the last');
    const partial = mine.slice(0, -1).map((c) => c.text);
    // Chunks are post-processed whole suggestions (docs/protocol.md): brackets the model left open are closed, so a
    // later chunk extends an earlier one once those added closers (at most a few characters) are set aside.
    for (let i = 1; i < partial.length; i++) {
      const stem = partial[i - 1].trimEnd().replace(/[)\]}'"]{1,3}$/, '');
      assert.ok(partial[i].startsWith(stem), `chunk ${i} does not extend chunk ${i - 1}: ${JSON.stringify(partial)}`);
    }
    const range = items[0].range;
    if (range !== undefined) {
      assert.deepEqual(range.start, CURSOR, 'the range starts at the cursor');
      assert.equal(range.end.line, CURSOR.line, 'the range stays on the cursor line');
    }
  });

  it('a cancelled request answers empty and sends no chunk after its empty done chunk', async () => {
    assert.ok(ready, 'the server never reported ready (see the status test)');
    const docUri = await openCopy('cancel.py');
    const before = events.length;
    const source = new CancellationTokenSource();
    const pending = connection.sendRequest<InlineCompletionResult>(Methods.inlineCompletion, inlineParams(CURSOR, docUri), source.token);
    // cancel once generation is visibly under way (the first chunk), as a keystroke would
    await waitFor(() => (events.slice(before).some((e) => e.kind === 'chunk') ? true : undefined), 60_000, 'a first chunk');
    source.cancel();
    const result = await pending;
    assert.deepEqual(resultItems(result), [], `cancelled request answered ${JSON.stringify(result)}`);
    const settledAt = events.length;
    await sleep(500);
    const mine = events.slice(before).filter((e) => e.kind === 'chunk').map((e) => e.params as InlineCompletionChunk);
    assert.deepEqual(events.slice(settledAt).filter((e) => e.kind === 'chunk'), [], 'no chunks after the response');
    assert.deepEqual({ text: mine[mine.length - 1].text, done: mine[mine.length - 1].done }, { text: '', done: true });
  });

  it('a newer request supersedes an older one of the same document', async () => {
    assert.ok(ready, 'the server never reported ready (see the status test)');
    const docUri = await openCopy('supersede.py');
    const before = events.length;
    const older = connection.sendRequest<InlineCompletionResult>(Methods.inlineCompletion, inlineParams(CURSOR, docUri));
    await waitFor(() => (events.slice(before).some((e) => e.kind === 'chunk') ? true : undefined), 60_000, 'a first chunk');
    const newer = connection.sendRequest<InlineCompletionResult>(Methods.inlineCompletion, inlineParams(CURSOR, docUri));
    const [a, b] = await Promise.all([older, newer]);
    assert.deepEqual(resultItems(a), [], 'the superseded request answers empty');
    assert.equal(resultItems(b).length, 1);
  });

  it('after an incremental change, a new request streams for the new version and position', async () => {
    assert.ok(ready, 'the server never reported ready (see the status test)');
    version += 1;
    const typed = 'return';
    await connection.sendNotification('textDocument/didChange', {
      textDocument: { uri, version },
      contentChanges: [{ range: { start: CURSOR, end: CURSOR }, text: typed }],
    });
    const position = { line: CURSOR.line, character: CURSOR.character + typed.length };
    const before = events.length;
    const result: InlineCompletionResult = await connection.sendRequest(Methods.inlineCompletion, inlineParams(position));
    const mine = events.slice(before).filter((e) => e.kind === 'chunk').map((e) => e.params as InlineCompletionChunk);
    const items = resultItems(result);
    assert.ok(mine.length >= 1);
    assert.ok(mine.every((c) => c.version === version && c.position.character === position.character), JSON.stringify(mine));
    const last = mine[mine.length - 1];
    assert.equal(last.done, true);
    assert.equal(last.text, items.length > 0 ? items[0].insertText : '');
    assert.ok(chunks().length > mine.length);
  });

  it('shuts down and exits cleanly', async () => {
    await connection.sendRequest('shutdown');
    await connection.sendNotification('exit');
    const code = await waitFor(() => exitCode, 15_000, 'the server process to exit');
    assert.equal(code, 0);
  });
});
