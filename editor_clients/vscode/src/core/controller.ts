/** Streaming inline suggestions without VS Code: requests, chunk routing, re-trigger and cancellation decisions. */

import type { CancellationToken } from 'vscode-languageserver-protocol';
import { InlineCompletionParams, InlineCompletionResult, parseChunk, resultItems } from './protocol';
import { CursorSnapshot, Stream, StreamCache, Suggestion, toSuggestions } from './streamCache';

/** LSP InlineCompletionTriggerKind: 1 = invoked by the user, 2 = automatic while typing. */
export type TriggerKind = 1 | 2;

export interface ControllerHooks {
  /** Send textDocument/inlineCompletion; cancelling `token` must send $/cancelRequest. */
  send(params: InlineCompletionParams, token: CancellationToken): Promise<InlineCompletionResult>;
  /** Ask the editor to call the provider again for `uri` (new streamed text to draw). */
  refresh(uri: string): void;
  /** Where the user's cursor is in `uri` right now; undefined when that document is not the focused editor. */
  cursor(uri: string): CursorSnapshot | undefined;
  log?(message: string): void;
}

/** Counters for the status tooltip and the tests. */
export interface ControllerStats {
  requests: number;
  cacheHits: number;
  chunks: number;
  cancelled: number;
  errors: number;
}

export class SuggestionController {
  readonly cache: StreamCache;
  readonly stats: ControllerStats = { requests: 0, cacheHits: 0, chunks: 0, cancelled: 0, errors: 0 };

  constructor(private readonly hooks: ControllerHooks, capacity = 32) {
    this.cache = new StreamCache(capacity);
  }

  /**
   * Suggestions for `now`: served from the document's stream when the cursor is where it was asked for (or typed
   * through it), else from a new request. Waits until there is text to show, the response, or cancellation.
   */
  async provide(now: CursorSnapshot, trigger: TriggerKind, token: CancellationToken): Promise<Suggestion[]> {
    const hit = this.cache.lookup(now);
    const stream = hit?.stream ?? this.start(now, trigger);
    if (hit !== undefined) {
      this.stats.cacheHits += 1;
    }
    const onCancel = token.onCancellationRequested(() => {
      stream.wake();
      this.releaseIfAbandoned(stream);
    });
    stream.waiters += 1;
    try {
      for (;;) {
        const current = this.cache.lookup(now);
        if (current === undefined || current.stream !== stream || token.isCancellationRequested) {
          return [];
        }
        if (current.suggestions.length > 0 || stream.done) {
          return current.suggestions;
        }
        await stream.changed();
      }
    } finally {
      stream.waiters -= 1;
      onCancel.dispose();
    }
  }

  /** Route one `lspCopilot/inlineCompletionChunk`; malformed, stale and foreign chunks are dropped. */
  onChunk(raw: unknown): void {
    const chunk = parseChunk(raw);
    if (chunk === undefined) {
      this.hooks.log?.(`dropped a malformed chunk: ${JSON.stringify(raw)}`);
      return;
    }
    const stream = this.cache.applyChunk(chunk);
    if (stream !== undefined) {
      this.stats.chunks += 1;
      this.redraw(stream);
    }
  }

  /** Cancel and forget the stream of `uri` (every stream when omitted): the next provide call asks anew. */
  invalidate(uri?: string): void {
    const streams = uri === undefined ? this.cache.all() : [this.cache.current(uri)];
    for (const stream of streams) {
      if (stream !== undefined) {
        this.cancel(stream);
      }
    }
  }

  dispose(): void {
    this.invalidate();
  }

  private start(now: CursorSnapshot, trigger: TriggerKind): Stream {
    const previous = this.cache.current(now.uri);
    if (previous !== undefined) {
      this.cancel(previous);
    }
    const stream = this.cache.begin(now);
    const params: InlineCompletionParams = {
      textDocument: { uri: now.uri },
      position: { ...now.position },
      context: { triggerKind: trigger },
    };
    this.stats.requests += 1;
    // a send that throws synchronously (no client) fails this stream like a rejected request
    Promise.resolve().then(() => this.hooks.send(params, stream.source.token)).then(
      (result) => this.complete(stream, toSuggestions(resultItems(result), now.position)),
      (error: unknown) => {
        if (!stream.cancelled) {
          this.stats.errors += 1;
          this.hooks.log?.(`inlineCompletion failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        this.complete(stream, []);
      },
    );
    return stream;
  }

  private complete(stream: Stream, suggestions: Suggestion[]): void {
    // the server drops a request when its document is edited; if the user edited by typing (through) the streamed
    // text, that prefix still stands as the suggestion, so keep it instead of blanking the ghost text
    if (suggestions.length === 0 && stream.text !== '' && !stream.cancelled) {
      const cursor = this.hooks.cursor(stream.at.uri);
      if (cursor !== undefined && cursor.version !== stream.at.version) {
        suggestions = stream.visible();
      }
    }
    const changed = this.cache.finish(stream, suggestions);
    if (changed) {
      this.redraw(stream);
    }
  }

  /**
   * New text for `stream`: a provider call waiting on it draws it (its token says whether it is still wanted);
   * otherwise re-trigger the editor, or cancel the stream when the user's cursor has left it.
   */
  private redraw(stream: Stream): void {
    if (stream.waiters > 0 || this.releaseIfAbandoned(stream)) {
      return;
    }
    this.hooks.refresh(stream.at.uri);
  }

  /** Cancel `stream` when the user's cursor no longer matches it; returns true when it was cancelled. */
  private releaseIfAbandoned(stream: Stream): boolean {
    if (stream.cancelled || this.cache.current(stream.at.uri) !== stream) {
      return true;
    }
    const cursor = this.hooks.cursor(stream.at.uri);
    const hit = cursor === undefined ? undefined : this.cache.lookup(cursor);
    if (hit?.stream === stream) {
      return false;
    }
    this.cancel(stream);
    return true;
  }

  private cancel(stream: Stream): void {
    if (!stream.done && !stream.cancelled) {
      this.stats.cancelled += 1;
    }
    stream.cancel();
    this.cache.remove(stream);
  }
}
