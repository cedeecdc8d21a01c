/** Unit tests of the stream cache: chunk routing, response handling, type-through reuse. */

import * as assert from 'node:assert/strict';
import { CursorSnapshot, StreamCache, Suggestion, followSuggestion, toSuggestions, typedSince } from '../../src/core/streamCache';

const URI = 'file:///w/a.py';

function cursor(linePrefix: string, lineSuffix = '', extra: Partial<CursorSnapshot> = {}): CursorSnapshot {
  return { uri: URI, version: 1, position: { line: 3, character: linePrefix.length }, linePrefix, lineSuffix, ...extra };
}

function chunk(text: string, done = false, over: Record<string, unknown> = {}): Parameters<StreamCache['applyChunk']>[0] {
  return { requestId: 1, uri: URI, version: 1, position: { line: 3, character: 4 }, text, done, ...over };
}

describe('typedSince', () => {
  it('is empty for the same cursor', () => {
    assert.equal(typedSince(cursor('    '), cursor('    ')), '');
  });
  it('returns the characters typed at the cursor', () => {
    assert.equal(typedSince(cursor('    ', ')'), cursor('    ret', ')', { version: 4 })), 'ret');
  });
  it('is undefined after moving to another line, deleting, or a changed suffix', () => {
    assert.equal(typedSince(cursor('    '), cursor('    ', '', { position: { line: 4, character: 4 } })), undefined);
    assert.equal(typedSince(cursor('    '), cursor('   ')), undefined);
    assert.equal(typedSince(cursor('    x', ''), cursor('    x(', ')')), undefined);
    assert.equal(typedSince(cursor('    '), cursor('    ', '', { uri: 'file:///w/b.py' })), undefined);
  });
  it('is undefined when the cursor is not right after the typed text', () => {
    assert.equal(typedSince(cursor('    '), cursor('    ab', '', { position: { line: 3, character: 5 } })), undefined);
  });
});

describe('followSuggestion', () => {
  const at = { line: 3, character: 4 };
  const s: Suggestion = { insertText: 'return x)', range: { start: at, end: { line: 3, character: 5 } }, snippet: false };
  it('keeps the suggestion when nothing was typed', () => {
    assert.deepEqual(followSuggestion(s, '', at), s);
  });
  it('drops the typed prefix and shifts the range by its length', () => {
    assert.deepEqual(followSuggestion(s, 'ret', at), {
      insertText: 'urn x)',
      range: { start: { line: 3, character: 7 }, end: { line: 3, character: 8 } },
      snippet: false,
    });
  });
  it('is undefined when the typing diverges or consumes the whole suggestion', () => {
    assert.equal(followSuggestion(s, 'rex', at), undefined);
    assert.equal(followSuggestion(s, 'return x)', at), undefined);
  });
  it('does not type through snippets or ranges that start before the cursor', () => {
    assert.equal(followSuggestion({ ...s, snippet: true }, 'r', at), undefined);
    assert.equal(followSuggestion({ ...s, range: { start: { line: 3, character: 2 }, end: at } }, 'r', at), undefined);
  });
});

describe('toSuggestions', () => {
  it('defaults a missing range to the empty range at the cursor and unwraps snippets', () => {
    const at = { line: 1, character: 2 };
    const out = toSuggestions([{ insertText: 'a' }, { insertText: { kind: 'snippet', value: 'b$0' } }], at);
    assert.deepEqual(out, [
      { insertText: 'a', range: { start: at, end: at }, snippet: false },
      { insertText: 'b$0', range: { start: at, end: at }, snippet: true },
    ]);
  });
});

describe('StreamCache', () => {
  it('routes chunks of the current request and redraws the latest text', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    assert.equal(cache.applyChunk(chunk('ret')), stream);
    assert.equal(cache.applyChunk(chunk('return x')), stream);
    assert.equal(stream.text, 'return x');
    assert.deepEqual(cache.lookup(cursor('    '))?.suggestions.map((s) => s.insertText), ['return x']);
  });

  it('drops chunks of another version, position or document, and unchanged text', () => {
    const cache = new StreamCache();
    cache.begin(cursor('    '));
    assert.equal(cache.applyChunk(chunk('a', false, { version: 2 })), undefined);
    assert.equal(cache.applyChunk(chunk('a', false, { position: { line: 3, character: 5 } })), undefined);
    assert.equal(cache.applyChunk(chunk('a', false, { uri: 'file:///w/b.py' })), undefined);
    assert.notEqual(cache.applyChunk(chunk('a')), undefined);
    assert.equal(cache.applyChunk(chunk('a')), undefined);
  });

  it('ignores the empty final chunk of a cancelled request and anything after the response', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    cache.applyChunk(chunk('ret'));
    assert.equal(cache.applyChunk(chunk('', true)), undefined);
    assert.equal(stream.text, 'ret');
    cache.finish(stream, toSuggestions([{ insertText: 'return 1' }], stream.at.position));
    assert.equal(cache.applyChunk(chunk('return 2')), undefined);
    assert.deepEqual(cache.lookup(cursor('    '))?.suggestions.map((s) => s.insertText), ['return 1']);
  });

  it('reports whether the response changed what is shown', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    cache.applyChunk(chunk('return 1', true));
    assert.equal(cache.finish(stream, toSuggestions([{ insertText: 'return 1' }], stream.at.position)), false);
    const other = cache.begin(cursor('    ', '', { version: 2 }));
    assert.equal(cache.finish(other, toSuggestions([{ insertText: 'x' }], other.at.position)), true);
  });

  it('serves the rest of the suggestion while the user types it, and misses when they diverge', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    cache.finish(stream, toSuggestions([{ insertText: 'return x' }], stream.at.position));
    const hit = cache.lookup(cursor('    ret', '', { version: 5 }));
    assert.equal(hit?.stream, stream);
    assert.equal(hit?.suggestions[0].insertText, 'urn x');
    assert.equal(cache.lookup(cursor('    rex', '', { version: 5 })), undefined);
  });

  it('answers an empty hit for a finished request with nothing to suggest at the same cursor', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    cache.finish(stream, []);
    assert.deepEqual(cache.lookup(cursor('    ')), { stream, suggestions: [] });
    assert.equal(cache.lookup(cursor('    a')), undefined);
  });

  it('keeps one stream per document and evicts (cancelling) the oldest beyond capacity', () => {
    const cache = new StreamCache(2);
    const a = cache.begin(cursor('', '', { uri: 'file:///a' }));
    cache.begin(cursor('', '', { uri: 'file:///b' }));
    cache.begin(cursor('', '', { uri: 'file:///c' }));
    assert.equal(cache.current('file:///a'), undefined);
    assert.equal(a.cancelled, true);
    assert.equal(cache.all().length, 2);
  });

  it('misses for a cancelled stream', () => {
    const cache = new StreamCache();
    const stream = cache.begin(cursor('    '));
    stream.cancel();
    assert.equal(cache.lookup(cursor('    ')), undefined);
  });
});
