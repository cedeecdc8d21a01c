/** Unit tests of the wire-type guards: chunk and status parsing, result shapes. */

import * as assert from 'node:assert/strict';
import { parseChunk, parseStatus, resultItems } from '../../src/core/protocol';

describe('parseChunk', () => {
  const good = { requestId: 7, uri: 'file:///w/a.py', version: 12, position: { line: 3, character: 8 }, text: 'return', done: false };
  it('accepts the documented shape', () => {
    assert.deepEqual(parseChunk(good), good);
    assert.deepEqual(parseChunk({ ...good, requestId: 'abc' }), { ...good, requestId: 'abc' });
  });
  it('rejects missing or mistyped fields', () => {
    for (const bad of [null, 3, {}, { ...good, text: undefined }, { ...good, done: 'no' }, { ...good, position: { line: 1 } }, { ...good, version: '1' }]) {
      assert.equal(parseChunk(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('parseStatus', () => {
  it('accepts the five states and defaults a missing model to ""', () => {
    for (const state of ['loading', 'ready', 'generating', 'error', 'disabled']) {
      assert.equal(parseStatus({ state, model: 'm' })?.state, state);
    }
    assert.equal(parseStatus({ state: 'ready' })?.model, '');
  });
  it('rejects unknown states', () => {
    assert.equal(parseStatus({ state: 'sleeping', model: 'm' }), undefined);
    assert.equal(parseStatus(undefined), undefined);
  });
});

describe('resultItems', () => {
  it('reads a list, an array and null', () => {
    assert.deepEqual(resultItems({ items: [{ insertText: 'a' }] }), [{ insertText: 'a' }]);
    assert.deepEqual(resultItems([{ insertText: 'b' }]), [{ insertText: 'b' }]);
    assert.deepEqual(resultItems(null), []);
  });
});
