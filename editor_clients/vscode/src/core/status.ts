/** Status bar text for the server's `lspCopilot/status` and the client's own state (no VS Code import). */

import type { ServerStatus } from './protocol';

/** The language client's side: is the server process up, and has the user switched suggestions off. */
export interface ClientView {
  running: 'starting' | 'running' | 'stopped';
  enabled: boolean;
}

export type StatusSeverity = 'normal' | 'warning' | 'error';

export interface StatusPresentation {
  text: string;
  tooltip: string;
  severity: StatusSeverity;
}

/** Codicons per state; `~spin` animates. */
const ICONS = {
  starting: '$(loading~spin)',
  loading: '$(loading~spin)',
  ready: '$(sparkle)',
  generating: '$(sync~spin)',
  error: '$(error)',
  disabled: '$(circle-slash)',
  off: '$(circle-slash)',
  stopped: '$(debug-disconnect)',
} as const;

function describeDetails(status: ServerStatus): string[] {
  // the status request may carry nulls (no model yet): show only what is known
  const lines: string[] = [];
  if (typeof status.device === 'string') {
    lines.push(`device: ${status.device}`);
  }
  if (typeof status.draft === 'string' && status.draft !== '') {
    lines.push(`draft: ${status.draft}`);
  }
  if (typeof status.requests === 'number') {
    lines.push(`requests: ${status.requests}`);
  }
  if (typeof status.cacheHitRate === 'number') {
    lines.push(`cache hit rate: ${Math.round(status.cacheHitRate * 100)}%`);
  }
  return lines;
}

/** The status bar item for a server status (undefined = none received yet) and the client's view. */
export function formatStatus(status: ServerStatus | undefined, client: ClientView): StatusPresentation {
  const model = status?.model ? ` ${status.model}` : '';
  if (client.running === 'stopped') {
    return { text: `${ICONS.stopped} lsp-copilot`, tooltip: 'lsp-copilot: server stopped (run "lsp-copilot: Restart Server")', severity: 'error' };
  }
  if (client.running === 'starting' || status === undefined) {
    return { text: `${ICONS.starting} lsp-copilot`, tooltip: 'lsp-copilot: starting the server', severity: 'normal' };
  }
  if (!client.enabled) {
    return { text: `${ICONS.off}${model}`, tooltip: `lsp-copilot: suggestions off (click to turn on)`, severity: 'warning' };
  }
  const headline = `lsp-copilot: ${status.state}${model ? ` (${status.model})` : ''}`;
  const tooltip = [headline, ...(status.message ? [status.message] : []), ...describeDetails(status)].join('\n');
  const severity: StatusSeverity = status.state === 'error' ? 'error' : status.state === 'disabled' ? 'warning' : 'normal';
  return { text: `${ICONS[status.state]}${model}`, tooltip, severity };
}
