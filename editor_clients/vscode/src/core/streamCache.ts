/** Streamed suggestions per document: the latest chunk text, the final items, and type-through reuse. */

import { CancellationTokenSource } from 'vscode-languageserver-protocol';
import type { InlineCompletionChunk, InlineCompletionItem, Position } from './protocol';

export interface Range {
  start: Position;
  end: Position;
}

/** The cursor and its line split at the cursor; positions and lengths are UTF-16 code units (as in JS strings). */
export interface CursorSnapshot {
  uri: string;
  version: number;
  position: Position;
  linePrefix: string;
  lineSuffix: string;
}

/** One suggestion ready to draw: `insertText` replaces `range` (a single-line range starting at the cursor). */
export interface Suggestion {
  insertText: string;
  range: Range;
  snippet: boolean;
}

/** One textDocument/inlineCompletion request and what it has produced so far. */
export class Stream {
  /** Latest streamed text: the whole suggestion so far, already post-processed by the server. */
  text = '';
  /** The response's items, in the coordinates of `at`; undefined until the response arrives. */
  items: Suggestion[] | undefined;
  /** Provider calls currently waiting on this stream (they redraw themselves; no re-trigger needed). */
  waiters = 0;
  readonly source = new CancellationTokenSource();
  private wakers: (() => void)[] = [];

  constructor(readonly at: CursorSnapshot) {}

  get done(): boolean {
    return this.items !== undefined;
  }

  get cancelled(): boolean {
    return this.source.token.isCancellationRequested;
  }

  /** Resolves at the next change of `text` or `items` (or cancellation). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  /** Wake every waiter of `changed()`. */
  wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    wakers.forEach((w) => w());
  }

  cancel(): void {
    this.source.cancel();
    this.wake();
  }

  /** What is on screen for this stream at its own cursor: the final items, else the streamed text. */
  visible(): Suggestion[] {
    if (this.items !== undefined) {
      return this.items;
    }
    return this.text === '' ? [] : [{ insertText: this.text, range: emptyRange(this.at.position), snippet: false }];
  }
}

export function emptyRange(position: Position): Range {
  return { start: { ...position }, end: { ...position } };
}

function samePosition(a: Position, b: Position): boolean {
  return a.line === b.line && a.character === b.character;
}

/**
 * The characters typed at the cursor since `at`, when `now` is `at` plus typing on the same line ("" = unmoved);
 * undefined when the cursor moved elsewhere or the text around it changed otherwise.
 */
export function typedSince(at: CursorSnapshot, now: CursorSnapshot): string | undefined {
  const sameLine = at.uri === now.uri && at.position.line === now.position.line;
  if (!sameLine || at.lineSuffix !== now.lineSuffix || !now.linePrefix.startsWith(at.linePrefix)) {
    return undefined;
  }
  const typed = now.linePrefix.slice(at.linePrefix.length);
  // invariant: the cursor sits right after what was typed
  return now.position.character === at.position.character + typed.length ? typed : undefined;
}

/** `s` after the user typed `typed` at its start: the rest of it, or undefined when the typing diverged from it. */
export function followSuggestion(s: Suggestion, typed: string, at: Position): Suggestion | undefined {
  if (typed === '') {
    return s;
  }
  // type-through only for plain text whose range starts at the request's cursor (the server's usual shape)
  if (s.snippet || !samePosition(s.range.start, at) || !s.insertText.startsWith(typed)) {
    return undefined;
  }
  if (typed.length >= s.insertText.length) {
    return undefined;
  }
  const shift = typed.length;
  return {
    insertText: s.insertText.slice(shift),
    range: {
      start: { line: at.line, character: at.character + shift },
      end: { line: s.range.end.line, character: s.range.end.character + shift },
    },
    snippet: false,
  };
}

/** Convert the server's items (LSP) to suggestions; a missing range is the empty range at the cursor. */
export function toSuggestions(items: readonly InlineCompletionItem[], at: Position): Suggestion[] {
  return items.map((item) => {
    const snippet = typeof item.insertText !== 'string';
    const insertText = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
    const range = item.range ? { start: { ...item.range.start }, end: { ...item.range.end } } : emptyRange(at);
    return { insertText, range, snippet };
  });
}

export interface CacheHit {
  stream: Stream;
  /** Suggestions moved to the current cursor; empty while the stream has nothing yet or found nothing. */
  suggestions: Suggestion[];
}

/** At most one live stream per document (the server supersedes older requests of the same document anyway). */
export class StreamCache {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly capacity = 32) {}

  /** Start tracking a new stream for `at.uri`, replacing (not cancelling) the previous one. */
  begin(at: CursorSnapshot): Stream {
    const stream = new Stream(at);
    this.streams.delete(at.uri);
    this.streams.set(at.uri, stream);
    // invariant: Map keeps insertion order, so the first key is the least recently started document
    while (this.streams.size > this.capacity) {
      const oldest = this.streams.keys().next().value as string;
      this.streams.get(oldest)?.cancel();
      this.streams.delete(oldest);
    }
    return stream;
  }

  current(uri: string): Stream | undefined {
    return this.streams.get(uri);
  }

  /** Forget `stream` if it is still the current one of its document. */
  remove(stream: Stream): void {
    if (this.streams.get(stream.at.uri) === stream) {
      this.streams.delete(stream.at.uri);
    }
  }

  all(): Stream[] {
    return [...this.streams.values()];
  }

  /**
   * Record a chunk; returns the stream whose text changed, else undefined (stale, foreign or final-empty chunk).
   * A chunk belongs to the current stream of its document when version and position match.
   */
  applyChunk(chunk: InlineCompletionChunk): Stream | undefined {
    const stream = this.streams.get(chunk.uri);
    if (stream === undefined || stream.done || stream.cancelled) {
      return undefined;
    }
    if (stream.at.version !== chunk.version || !samePosition(stream.at.position, chunk.position)) {
      return undefined;
    }
    // an empty final chunk marks a cancelled/superseded request: the response (authoritative) follows
    if ((chunk.done && chunk.text === '') || chunk.text === stream.text) {
      return undefined;
    }
    stream.text = chunk.text;
    stream.wake();
    return stream;
  }

  /** Record the response; returns true when it changed what the stream shows. */
  finish(stream: Stream, suggestions: Suggestion[]): boolean {
    const before = JSON.stringify(stream.visible());
    stream.items = suggestions;
    stream.wake();
    return JSON.stringify(stream.visible()) !== before;
  }

  /** The current stream of `now.uri` if the cursor is still where it was asked for (or typed through it). */
  lookup(now: CursorSnapshot): CacheHit | undefined {
    const stream = this.streams.get(now.uri);
    if (stream === undefined || stream.cancelled) {
      return undefined;
    }
    const typed = typedSince(stream.at, now);
    if (typed === undefined) {
      return undefined;
    }
    const suggestions = stream
      .visible()
      .map((s) => followSuggestion(s, typed, stream.at.position))
      .filter((s): s is Suggestion => s !== undefined);
    // having typed past or away from every suggestion means this stream is no longer about this cursor
    return typed !== '' && suggestions.length === 0 ? undefined : { stream, suggestions };
  }
}
