/** Extension entry point: activate creates the Copilot (client, provider, status bar, commands); deactivate stops it. */

import * as vscode from 'vscode';
import { Copilot, CopilotApi } from './copilot';

/** The one live instance between activate and deactivate (VS Code's lifecycle leaves no other place for it). */
let copilot: Copilot | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<CopilotApi> {
  copilot = new Copilot(context);
  context.subscriptions.push(copilot);
  await copilot.start();
  return copilot;
}

export async function deactivate(): Promise<void> {
  await copilot?.stop();
  copilot = undefined;
}
