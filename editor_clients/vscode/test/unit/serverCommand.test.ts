/** Unit tests of server command resolution: explicit command, Python path, PATH lookup, python fallback. */

import * as assert from 'node:assert/strict';
import { LaunchEnvironment, findOnPath, resolveServerCommand } from '../../src/core/serverCommand';

function env(executables: string[], platform: NodeJS.Platform = 'linux', pathVariable = '/usr/bin:/opt/venv/bin'): LaunchEnvironment {
  return { platform, pathVariable, isExecutable: (file) => executables.includes(file) };
}

const none = { command: [], pythonPath: '', extraArgs: [] };

describe('resolveServerCommand', () => {
  it('prefers an explicit command line, dropping blank parts', () => {
    const launch = resolveServerCommand({ ...none, command: ['/x/lsp-copilot', '', 'serve'], pythonPath: '/py' }, env([]));
    assert.deepEqual(launch, { command: '/x/lsp-copilot', args: ['serve'], source: 'server.command' });
  });

  it('runs the module with the configured Python', () => {
    const launch = resolveServerCommand({ ...none, pythonPath: ' /venv/bin/python ' }, env(['/opt/venv/bin/lsp-copilot']));
    assert.deepEqual(launch, { command: '/venv/bin/python', args: ['-m', 'lsp_copilot', 'serve'], source: 'server.pythonPath' });
  });

  it('finds lsp-copilot on the PATH, in PATH order', () => {
    const launch = resolveServerCommand(none, env(['/opt/venv/bin/lsp-copilot']));
    assert.deepEqual(launch, { command: '/opt/venv/bin/lsp-copilot', args: ['serve'], source: 'PATH' });
  });

  it('falls back to python3 -m lsp_copilot serve (python on Windows)', () => {
    assert.deepEqual(resolveServerCommand(none, env([])), { command: 'python3', args: ['-m', 'lsp_copilot', 'serve'], source: 'python' });
    assert.equal(resolveServerCommand(none, env([], 'win32', 'C:\\bin')).command, 'python');
  });

  it('appends the extra arguments to whichever command was chosen', () => {
    const launch = resolveServerCommand({ ...none, extraArgs: ['--log-file', '/tmp/l.log'] }, env([]));
    assert.deepEqual(launch.args, ['-m', 'lsp_copilot', 'serve', '--log-file', '/tmp/l.log']);
  });
});

describe('findOnPath', () => {
  it('tries the PATHEXT extensions on Windows', () => {
    const e = { ...env(['C:\\venv\\Scripts\\lsp-copilot.exe'], 'win32', 'C:\\bin;C:\\venv\\Scripts'), pathExt: '.COM;.EXE' };
    assert.equal(findOnPath('lsp-copilot', e), 'C:\\venv\\Scripts\\lsp-copilot.exe');
  });
  it('skips empty PATH entries and returns undefined when absent', () => {
    assert.equal(findOnPath('lsp-copilot', env([], 'linux', '::')), undefined);
  });
});
