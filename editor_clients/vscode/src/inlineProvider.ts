/** VS Code side of inline suggestions: cursor snapshots in, `InlineCompletionItem`s out, via the controller. */

import * as vscode from 'vscode';
import type { SuggestionController, TriggerKind } from './core/controller';
import type { Range } from './core/streamCache';
import { CursorSnapshot } from './core/streamCache';

/** `uri` as the language client writes it on the wire (chunks echo it back). */
export type UriToWire = (uri: vscode.Uri) => string;

/** The cursor of `document` at `position`, with its line split there (UTF-16 units on both sides). */
export function snapshotAt(document: vscode.TextDocument, position: vscode.Position, toWire: UriToWire): CursorSnapshot {
  const line = document.lineAt(position.line).text;
  return {
    uri: toWire(document.uri),
    version: document.version,
    position: { line: position.line, character: position.character },
    linePrefix: line.slice(0, position.character),
    lineSuffix: line.slice(position.character),
  };
}

export function toVsRange(range: Range): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

/** VS Code's trigger kinds (Invoke = 0, Automatic = 1) mapped to LSP's (Invoked = 1, Automatic = 2). */
export function toLspTrigger(kind: vscode.InlineCompletionTriggerKind): TriggerKind {
  return kind === vscode.InlineCompletionTriggerKind.Invoke ? 1 : 2;
}

export interface ProviderGate {
  /** Suggestions switched on (the toggle command) and wanted for this language. */
  wants(document: vscode.TextDocument): boolean;
}

/** Serves the languageclient's inline completion middleware; never throws into VS Code. */
export class InlineProvider {
  constructor(
    private readonly controller: SuggestionController,
    private readonly gate: ProviderGate,
    private readonly toWire: UriToWire,
  ) {}

  async provide(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[]> {
    if (!this.gate.wants(document)) {
      return [];
    }
    const now = snapshotAt(document, position, this.toWire);
    const suggestions = await this.controller.provide(now, toLspTrigger(context.triggerKind), token);
    return suggestions.map(
      (s) => new vscode.InlineCompletionItem(s.snippet ? new vscode.SnippetString(s.insertText) : s.insertText, toVsRange(s.range)),
    );
  }

  /** The cursor in `uri` when it is the focused editor's document, for the controller's abandonment check. */
  cursor(uri: string): CursorSnapshot | undefined {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || this.toWire(editor.document.uri) !== uri || !editor.selection.isEmpty) {
      return undefined;
    }
    return snapshotAt(editor.document, editor.selection.active, this.toWire);
  }

  /** Ask VS Code to call the provider again when `uri` is in the focused editor. */
  refresh(uri: string): void {
    const editor = vscode.window.activeTextEditor;
    if (editor !== undefined && this.toWire(editor.document.uri) === uri) {
      void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    }
  }
}
