/**
 * Which inline suggestions reach the editor. The language client sends
 * `textDocument/inlineCompletion` (passing VS Code's cancellation token on as
 * `$/cancelRequest`) and converts the answer; the middleware in extension.ts asks these
 * functions whether to send the request at all and what to keep from the answer.
 * No `vscode` import, so it runs under `node --test`.
 */

/** What VS Code tells the provider when it asks for suggestions, reduced to what matters here. */
export interface RequestContext {
  /** `codellama.enable` */
  enabled: boolean;
  /** Editor-side setting `editor.inlineSuggest.enabled`; false means nobody would see the result. */
  inlineSuggestEnabled?: boolean;
}

/** Ask the server only when a suggestion can be shown. */
export function shouldRequest(ctx: RequestContext): boolean {
  return ctx.enabled && ctx.inlineSuggestEnabled !== false;
}

/** What happened to the document and the request while the server was generating. */
export interface AnswerContext {
  /** Document version when VS Code asked. */
  requestedVersion: number;
  /** Document version when the answer arrived. */
  currentVersion: number;
  /** VS Code's cancellation token fired (the user typed on, moved, or dismissed). */
  cancelled: boolean;
}

/** An answer generated for an older text would be placed wrongly: drop it. */
export function isStale(ctx: AnswerContext): boolean {
  return ctx.cancelled || ctx.currentVersion !== ctx.requestedVersion;
}

interface ItemLike {
  insertText: string | { value: string };
  command?: { command: string; arguments?: unknown[] };
}

/** The language client's converted answer: a list object or a bare array. */
export type Answer<T extends ItemLike> = { items: T[] } | T[] | null | undefined;

/** The items worth showing: none for a stale answer, and never an empty insertion. */
export function keepItems<T extends ItemLike>(answer: Answer<T>, ctx: AnswerContext): T[] {
  if (answer === null || answer === undefined || isStale(ctx)) {
    return [];
  }
  const items = Array.isArray(answer) ? answer : answer.items;
  return items.filter((item) => insertTextOf(item) !== '');
}

export function insertTextOf(item: ItemLike): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}
