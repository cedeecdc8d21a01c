/** Unit tests of the settings pass-through: client-only keys stripped, streaming opt-in, language filter. */

import * as assert from 'node:assert/strict';
import { contributedKeys, explicitSettings, initializationOptions, isLanguageEnabled, serverSettings } from '../../src/core/settings';

const tree = {
  server: { command: [], pythonPath: '/py' },
  model: { path: '', device: 'auto' },
  completion: { maxTokens: 64 },
  disabledLanguages: ['markdown'],
};

describe('serverSettings', () => {
  it('drops the client-only server subtree and deep-copies the rest', () => {
    const out = serverSettings(tree);
    assert.deepEqual(out, { model: { path: '', device: 'auto' }, completion: { maxTokens: 64 }, disabledLanguages: ['markdown'] });
    (out.model as { path: string }).path = 'changed';
    assert.equal(tree.model.path, '');
    assert.ok('server' in tree);
  });
  it('turns a non-object into an empty tree', () => {
    assert.deepEqual(serverSettings(null), {});
    assert.deepEqual(serverSettings([1]), {});
    assert.deepEqual(serverSettings('x'), {});
  });
});

describe('initializationOptions', () => {
  it('opts in to streaming next to the settings tree', () => {
    const opts = initializationOptions(tree);
    assert.equal(opts.streaming, true);
    assert.deepEqual(opts.completion, { maxTokens: 64 });
    assert.equal(opts.server, undefined);
  });
});

describe('isLanguageEnabled', () => {
  it('disables exactly the listed language ids', () => {
    assert.equal(isLanguageEnabled('markdown', ['markdown']), false);
    assert.equal(isLanguageEnabled('python', ['markdown']), true);
    assert.equal(isLanguageEnabled('python', undefined), true);
    assert.equal(isLanguageEnabled('python', 'python'), true);
  });
});

describe('explicitSettings', () => {
  it('nests only the values the user set, folder over workspace over user', () => {
    const inspected: Record<string, { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }> = {
      'model.path': { globalValue: '/m' },
      'model.device': {},
      'completion.maxTokens': { globalValue: 64, workspaceValue: 32 },
      'completion.temperature': { globalValue: 0.5, workspaceValue: 0.2, workspaceFolderValue: 0 },
      disabledLanguages: { globalValue: ['markdown'] },
    };
    const tree = explicitSettings(Object.keys(inspected).concat('log.level'), (key) => inspected[key]);
    assert.deepEqual(tree, {
      model: { path: '/m' },
      completion: { maxTokens: 32, temperature: 0 },
      disabledLanguages: ['markdown'],
    });
  });
});

describe('contributedKeys', () => {
  it('lists lspCopilot keys without the prefix and without client-only ones', () => {
    const pkg = { contributes: { configuration: { properties: { 'lspCopilot.server.command': {}, 'lspCopilot.model.path': {}, 'other.x': {}, 'lspCopilot.serverless': {} } } } };
    assert.deepEqual(contributedKeys(pkg), ['model.path', 'serverless']);
    assert.deepEqual(contributedKeys(undefined), []);
  });
});
