/** Unit tests of the suggestion controller against a scripted in-process `send`, with real cancellation tokens. */

import * as assert from 'node:assert/strict';
import { CancellationToken, CancellationTokenSource } from 'vscode-languageserver-protocol';
import { ControllerHooks, SuggestionController } from '../../src/core/controller';
import type { InlineCompletionParams, InlineCompletionResult } from '../../src/core/protocol';
import type { CursorSnapshot } from '../../src/core/streamCache';

const URI = 'file:///w/a.py';

function at(linePrefix: string, version = 1, lineSuffix = ''): CursorSnapshot {
  return { uri: URI, version, position: { line: 0, character: linePrefix.length }, linePrefix, lineSuffix };
}

/** One request the controller sent: resolve it like the server would, watch its cancellation. */
interface Sent {
  params: InlineCompletionParams;
  token: CancellationToken;
  resolve(result: InlineCompletionResult): void;
  reject(error: Error): void;
}

class Harness implements ControllerHooks {
  sent: Sent[] = [];
  refreshed: string[] = [];
  cursorNow: CursorSnapshot | undefined;
  logs: string[] = [];
  readonly controller = new SuggestionController(this);

  send(params: InlineCompletionParams, token: CancellationToken): Promise<InlineCompletionResult> {
    return new Promise((resolve, reject) => this.sent.push({ params, token, resolve, reject }));
  }
  refresh(uri: string): void {
    this.refreshed.push(uri);
  }
  cursor(): CursorSnapshot | undefined {
    return this.cursorNow;
  }
  log(message: string): void {
    this.logs.push(message);
  }

  chunk(text: string, done = false, version = 1, character = 4): void {
    this.controller.onChunk({ requestId: 1, uri: URI, version, position: { line: 0, character }, text, done });
  }
}

/** Let promise callbacks (the controller's send/then chain) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setImmediate(r));
  }
}

function texts(items: { insertText: string }[]): string[] {
  return items.map((i) => i.insertText);
}

describe('SuggestionController', () => {
  it('sends one request with the cursor and LSP trigger kind, and returns the first streamed text', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const pending = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    assert.equal(h.sent.length, 1);
    assert.deepEqual(h.sent[0].params, { textDocument: { uri: URI }, position: { line: 0, character: 4 }, context: { triggerKind: 2 } });
    h.chunk('ret');
    assert.deepEqual(texts(await pending), ['ret']);
    assert.deepEqual(h.refreshed, [], 'a waiting provider draws the chunk itself');
  });

  it('re-triggers the editor on later chunks and serves them from the cache without new requests', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.chunk('ret');
    await first;
    h.chunk('return x');
    assert.deepEqual(h.refreshed, [URI]);
    const second = await h.controller.provide(at('    '), 1, new CancellationTokenSource().token);
    assert.deepEqual(texts(second), ['return x']);
    h.sent[0].resolve({ items: [{ insertText: 'return x + 1' }] });
    await settle();
    assert.deepEqual(h.refreshed, [URI, URI], 'the response differs from the last chunk: redraw');
    assert.deepEqual(texts(await h.controller.provide(at('    '), 1, new CancellationTokenSource().token)), ['return x + 1']);
    assert.equal(h.sent.length, 1);
    assert.equal(h.controller.stats.cacheHits, 2);
  });

  it('does not redraw when the response equals the final chunk', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.chunk('return 1', true);
    await first;
    h.sent[0].resolve([{ insertText: 'return 1' }]);
    await settle();
    assert.deepEqual(h.refreshed, []);
  });

  it('returns the response directly when the server streams nothing', async () => {
    const h = new Harness();
    const pending = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.sent[0].resolve({ items: [{ insertText: 'a', range: { start: { line: 0, character: 4 }, end: { line: 0, character: 5 } } }, { insertText: 'b' }] });
    const items = await pending;
    assert.deepEqual(texts(items), ['a', 'b']);
    assert.deepEqual(items[0].range.end, { line: 0, character: 5 });
  });

  it('types through the suggestion without a new request', async () => {
    const h = new Harness();
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.sent[0].resolve({ items: [{ insertText: 'return x' }] });
    await first;
    const next = await h.controller.provide(at('    ret', 2), 2, new CancellationTokenSource().token);
    assert.deepEqual(texts(next), ['urn x']);
    assert.deepEqual(next[0].range.start, { line: 0, character: 7 });
    assert.equal(h.sent.length, 1);
  });

  it('a diverging keystroke cancels the running request and starts a new one', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const t1 = new CancellationTokenSource();
    const first = h.controller.provide(at('    '), 2, t1.token);
    await settle();
    h.chunk('return');
    await first;
    h.cursorNow = at('    x', 2);
    const second = h.controller.provide(at('    x', 2), 2, new CancellationTokenSource().token);
    await settle();
    assert.equal(h.sent.length, 2);
    assert.equal(h.sent[0].token.isCancellationRequested, true, '$/cancelRequest for the old request');
    assert.equal(h.sent[1].token.isCancellationRequested, false);
    h.chunk('return', false, 1);
    assert.deepEqual(h.refreshed, [], 'chunks of the cancelled request are dropped');
    h.sent[1].resolve({ items: [{ insertText: ' = 1' }] });
    assert.deepEqual(texts(await second), [' = 1']);
  });

  it('keeps the stream when VS Code cancels a provider call but the cursor stays (our own re-trigger)', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const t1 = new CancellationTokenSource();
    const first = h.controller.provide(at('    '), 2, t1.token);
    await settle();
    t1.cancel();
    assert.deepEqual(await first, []);
    assert.equal(h.sent[0].token.isCancellationRequested, false);
    const second = h.controller.provide(at('    '), 1, new CancellationTokenSource().token);
    h.chunk('ret');
    assert.deepEqual(texts(await second), ['ret']);
    assert.equal(h.sent.length, 1);
  });

  it('cancels the request when VS Code cancels and the cursor has left', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const t1 = new CancellationTokenSource();
    const first = h.controller.provide(at('    '), 2, t1.token);
    await settle();
    h.cursorNow = { ...at('    '), position: { line: 7, character: 0 } };
    t1.cancel();
    assert.deepEqual(await first, []);
    assert.equal(h.sent[0].token.isCancellationRequested, true);
    assert.equal(h.controller.stats.cancelled, 1);
  });

  it('cancels a stream whose chunk arrives after the user left the document', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.chunk('r');
    await first;
    h.cursorNow = undefined;
    h.chunk('re');
    assert.equal(h.sent[0].token.isCancellationRequested, true);
    assert.deepEqual(h.refreshed, []);
  });

  it('keeps the streamed prefix when the server drops the request after the user typed into it', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.chunk('return x');
    await first;
    h.cursorNow = at('    r', 2);
    assert.deepEqual(texts(await h.controller.provide(at('    r', 2), 2, new CancellationTokenSource().token)), ['eturn x']);
    h.sent[0].resolve({ items: [] });
    await settle();
    assert.deepEqual(texts(await h.controller.provide(at('    re', 3), 2, new CancellationTokenSource().token)), ['turn x']);
    assert.equal(h.sent.length, 1);
  });

  it('an empty response at an unedited cursor clears the streamed text', async () => {
    const h = new Harness();
    h.cursorNow = at('    ');
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.chunk('return x');
    await first;
    h.sent[0].resolve({ items: [] });
    await settle();
    assert.deepEqual(h.refreshed, [URI], 'redraw to remove the ghost text');
    assert.deepEqual(await h.controller.provide(at('    '), 1, new CancellationTokenSource().token), []);
  });

  it('invalidate forces a fresh request at the same cursor', async () => {
    const h = new Harness();
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.sent[0].resolve({ items: [] });
    assert.deepEqual(await first, []);
    assert.deepEqual(await h.controller.provide(at('    '), 2, new CancellationTokenSource().token), [], 'empty answer is cached');
    assert.equal(h.sent.length, 1);
    h.controller.invalidate(URI);
    void h.controller.provide(at('    '), 1, new CancellationTokenSource().token);
    await settle();
    assert.equal(h.sent.length, 2);
    assert.equal(h.sent[1].params.context.triggerKind, 1);
  });

  it('a failed request yields no suggestion, is logged and counted', async () => {
    const h = new Harness();
    const first = h.controller.provide(at('    '), 2, new CancellationTokenSource().token);
    await settle();
    h.sent[0].reject(new Error('boom'));
    assert.deepEqual(await first, []);
    assert.equal(h.controller.stats.errors, 1);
    assert.match(h.logs.join('\n'), /boom/);
  });

  it('a send that throws (no server) yields no suggestion instead of throwing', async () => {
    const controller = new SuggestionController({
      send: () => {
        throw new Error('the lsp-copilot server is not running');
      },
      refresh: () => undefined,
      cursor: () => undefined,
    });
    assert.deepEqual(await controller.provide(at('    '), 2, new CancellationTokenSource().token), []);
    assert.equal(controller.stats.errors, 1);
  });

  it('drops malformed chunks with a log line', () => {
    const h = new Harness();
    h.controller.onChunk({ uri: URI, text: 3 });
    h.controller.onChunk(null);
    assert.equal(h.controller.stats.chunks, 0);
    assert.equal(h.logs.length, 2);
  });
});
