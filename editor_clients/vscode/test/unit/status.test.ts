/** Unit tests of the status bar text: every server state, the client's own states, details in the tooltip. */

import * as assert from 'node:assert/strict';
import { formatStatus } from '../../src/core/status';

const running = { running: 'running', enabled: true } as const;

describe('formatStatus', () => {
  it('shows the model name with a per-state icon', () => {
    assert.equal(formatStatus({ state: 'loading', model: 'embedded-target' }, running).text, '$(loading~spin) embedded-target');
    assert.equal(formatStatus({ state: 'ready', model: 'embedded-target' }, running).text, '$(sparkle) embedded-target');
    assert.equal(formatStatus({ state: 'generating', model: 'm' }, running).text, '$(sync~spin) m');
  });

  it('marks errors and carries the server message in the tooltip', () => {
    const view = formatStatus({ state: 'error', model: 'm', message: 'CUDA out of memory' }, running);
    assert.equal(view.severity, 'error');
    assert.equal(view.text, '$(error) m');
    assert.match(view.tooltip, /lsp-copilot: error \(m\)\nCUDA out of memory/);
  });

  it('lists the status request details', () => {
    const view = formatStatus({ state: 'ready', model: 'm', device: 'cpu', draft: 'd', requests: 12, cacheHitRate: 0.8 }, running);
    assert.match(view.tooltip, /device: cpu/);
    assert.match(view.tooltip, /draft: d/);
    assert.match(view.tooltip, /requests: 12/);
    assert.match(view.tooltip, /cache hit rate: 80%/);
  });

  it('leaves out details the server does not know yet', () => {
    const view = formatStatus({ state: 'loading', model: 'm', device: null, draft: null }, running);
    assert.doesNotMatch(view.tooltip, /device|draft|null/);
  });

  it('a server-side disabled state is a warning', () => {
    assert.equal(formatStatus({ state: 'disabled', model: 'm' }, running).severity, 'warning');
  });

  it('the client states win over the last server status', () => {
    const ready = { state: 'ready', model: 'm' } as const;
    assert.match(formatStatus(ready, { running: 'stopped', enabled: true }).tooltip, /server stopped/);
    assert.equal(formatStatus(ready, { running: 'stopped', enabled: true }).severity, 'error');
    assert.match(formatStatus(undefined, running).tooltip, /starting/);
    const off = formatStatus(ready, { running: 'running', enabled: false });
    assert.equal(off.text, '$(circle-slash) m');
    assert.match(off.tooltip, /suggestions off/);
  });
});
