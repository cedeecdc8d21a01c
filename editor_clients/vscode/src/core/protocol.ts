/** Wire types of lsp-copilot's LSP extensions (docs/protocol.md), shared by the extension and its tests. */

import type {
  InlineCompletionItem,
  InlineCompletionList,
  InlineCompletionParams,
  Position,
} from 'vscode-languageserver-protocol';

/** Method names of the standard request we send ourselves and of the two lsp-copilot extensions. */
export const Methods = {
  inlineCompletion: 'textDocument/inlineCompletion',
  chunk: 'lspCopilot/inlineCompletionChunk',
  status: 'lspCopilot/status',
} as const;

/** `lspCopilot/inlineCompletionChunk` params: `text` is the whole suggestion so far, never a delta. */
export interface InlineCompletionChunk {
  requestId: number | string;
  uri: string;
  version: number;
  position: Position;
  text: string;
  done: boolean;
}

export type ServerState = 'loading' | 'ready' | 'generating' | 'error' | 'disabled';

/** `lspCopilot/status` notification params; the request's result adds the optional fields. */
export interface ServerStatus {
  state: ServerState;
  model: string;
  message?: string;
  device?: string | null;
  draft?: string | null;
  cacheHitRate?: number;
  requests?: number;
}

export type InlineCompletionResult = InlineCompletionList | InlineCompletionItem[] | null;
export type { InlineCompletionItem, InlineCompletionList, InlineCompletionParams, Position };

const STATES: readonly string[] = ['loading', 'ready', 'generating', 'error', 'disabled'];

/** Narrow untrusted notification params to a chunk; anything malformed is undefined (and gets dropped). */
export function parseChunk(raw: unknown): InlineCompletionChunk | undefined {
  if (typeof raw !== 'object' || raw === null) {
    return undefined;
  }
  const c = raw as Record<string, unknown>;
  const pos = c.position as Record<string, unknown> | undefined;
  const ok =
    (typeof c.requestId === 'number' || typeof c.requestId === 'string') &&
    typeof c.uri === 'string' &&
    typeof c.version === 'number' &&
    typeof pos === 'object' && pos !== null &&
    typeof pos.line === 'number' &&
    typeof pos.character === 'number' &&
    typeof c.text === 'string' &&
    typeof c.done === 'boolean';
  return ok ? (raw as InlineCompletionChunk) : undefined;
}

/** Narrow untrusted status params; malformed input is undefined. */
export function parseStatus(raw: unknown): ServerStatus | undefined {
  if (typeof raw !== 'object' || raw === null) {
    return undefined;
  }
  const s = raw as Record<string, unknown>;
  if (typeof s.state !== 'string' || !STATES.includes(s.state)) {
    return undefined;
  }
  return { ...(raw as ServerStatus), model: typeof s.model === 'string' ? s.model : '' };
}

/** The items of an inlineCompletion result, whichever of its three shapes the server chose. */
export function resultItems(result: InlineCompletionResult | undefined): InlineCompletionItem[] {
  if (result === null || result === undefined) {
    return [];
  }
  return Array.isArray(result) ? result : result.items;
}
