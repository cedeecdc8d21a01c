/** Unit tests of package.json against the code and docs: settings tree with server defaults, commands, scripts. */

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

interface Property {
  type: string;
  default: unknown;
  description: string;
  enum?: string[];
}

const root = path.resolve(__dirname, '..', '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Property> }; commands: { command: string }[] };
  main: string;
  scripts: Record<string, string>;
};
const properties = manifest.contributes.configuration.properties;

/**
 * The server-owned tree (lsp_copilot/settings.py and context/settings.py, camelCase) with its defaults: the client
 * declares these for the Settings UI; it only ever sends values the user set.
 */
const SERVER_DEFAULTS: Record<string, unknown> = {
  enable: true,
  'model.path': '',
  'model.draft': '',
  'model.device': 'auto',
  'model.template': '',
  'completion.maxTokens': 128,
  'completion.temperature': 0,
  'completion.topP': 1,
  'completion.timeLimitMs': 3000,
  'completion.numSuggestions': 1,
  'completion.streamIntervalMs': 30,
  'completion.waitForModelMs': 5000,
  'completion.multiline': 'auto',
  'completion.speculation': 'auto',
  'completion.guardMembers': true,
  'completion.memberUsageWeight': 0.1,
  'completion.candidates': 8,
  'completion.candidateGap': 3,
  'completion.rerankWeight': 0.5,
  'completion.rerankLines': 4,
  'context.budgetTokens': 1536,
  'context.enableImports': true,
  'context.enableDefinitions': true,
  'context.enableSnippets': true,
  'context.enableIndex': true,
  'prompts.paths': [],
  disabledLanguages: [],
  'log.level': 'info',
  'log.file': '',
};

describe('package.json', () => {
  it('declares every server setting with its default, a type and a description', () => {
    for (const [key, value] of Object.entries(SERVER_DEFAULTS)) {
      const prop = properties[`lspCopilot.${key}`];
      assert.ok(prop, `lspCopilot.${key} is not contributed`);
      assert.deepEqual(prop.default, value, key);
      assert.ok(prop.type && prop.description, key);
      if (prop.enum) {
        assert.ok(prop.enum.includes(prop.default as string), `${key}: default outside its enum`);
      }
    }
  });

  it('declares only server settings and the client-only server.* keys', () => {
    for (const key of Object.keys(properties)) {
      const name = key.replace(/^lspCopilot\./, '');
      assert.ok(name in SERVER_DEFAULTS || name.startsWith('server.'), `unexpected setting ${key}`);
    }
  });

  it('contributes the commands the extension registers', () => {
    const source = fs.readFileSync(path.join(root, 'src', 'copilot.ts'), 'utf8');
    const block = /export const Commands = \{([^}]*)\}/.exec(source)?.[1] ?? '';
    const registered = [...block.matchAll(/'(lspCopilot\.[a-zA-Z]+)'/g)].map((m) => m[1]);
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual([...new Set(registered)].sort(), contributed);
    assert.deepEqual(contributed, ['lspCopilot.restartServer', 'lspCopilot.showLog', 'lspCopilot.toggle', 'lspCopilot.trigger']);
  });

  it('points main at the compiled entry point and has the CI scripts', () => {
    assert.equal(manifest.main, './out/src/extension.js');
    assert.ok(fs.existsSync(path.join(root, 'src', 'extension.ts')));
    for (const script of ['compile', 'lint', 'test', 'package', 'test:vscode']) {
      assert.ok(manifest.scripts[script], script);
    }
  });
});
