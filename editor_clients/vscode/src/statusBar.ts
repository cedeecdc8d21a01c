/** The status bar item: server state and model name, driven by `lspCopilot/status` and the client's state. */

import * as vscode from 'vscode';
import type { ServerStatus } from './core/protocol';
import { ClientView, formatStatus } from './core/status';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private status: ServerStatus | undefined;
  private client: ClientView = { running: 'starting', enabled: true };

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem('lspCopilot.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'lsp-copilot';
    this.item.command = command;
    this.render();
    this.item.show();
  }

  get current(): ServerStatus | undefined {
    return this.status;
  }

  /** A server status; the details only the request returns (device, draft, counters) survive notifications. */
  setStatus(status: ServerStatus): void {
    const previous = this.status;
    const details = previous === undefined
      ? {}
      : { device: previous.device, draft: previous.draft, cacheHitRate: previous.cacheHitRate, requests: previous.requests };
    this.status = { ...details, ...status };
    this.render();
  }

  setClient(view: Partial<ClientView>): void {
    this.client = { ...this.client, ...view };
    if (view.running === 'starting' || view.running === 'stopped') {
      this.status = undefined;
    }
    this.render();
  }

  private render(): void {
    const view = formatStatus(this.status, this.client);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
