/**
 * What the server is told about accepted suggestions (`codellama.accepted`, counted in its
 * memory only). No `vscode` import, so it runs under `node --test`.
 *
 * A whole accept needs nothing here: every inline item carries the server's command, which
 * VS Code runs when the item is accepted. Accepting a word or a line (Ctrl+→) runs nothing:
 * the provider hook for it (`handleDidPartiallyAcceptCompletionItem`) is a proposed API that
 * published extensions cannot use, and vscode-languageclient builds the provider itself. So
 * the extension recognises a partial accept by its edit: one change that inserts, at the
 * place the suggestions were shown, two or more characters that begin one of them (typing
 * inserts one character per change).
 */

/** The command the server puts on every item: `[item id, "full", length]`. */
export const ACCEPTED_COMMAND = 'codellama.accepted';

export interface ShownItem {
  /** The server's id of the suggestion (the command's first argument). */
  id: string;
  /** Text still to be inserted at the shown position. */
  text: string;
}

/** Suggestions on screen in a document, at a position of a version of it. */
export interface Shown {
  uri: string;
  version: number;
  line: number;
  character: number;
  items: ShownItem[];
}

/** One content change of a document, reduced to what matters here. */
export interface Change {
  uri: string;
  /** Document version after the change. */
  version: number;
  line: number;
  character: number;
  rangeLength: number;
  text: string;
}

interface ItemLike {
  insertText: string | { value: string };
  command?: { command: string; arguments?: unknown[] };
}

/** The shown items that carry the server's acceptance command, with their ids. */
export function shownItems(items: readonly ItemLike[]): ShownItem[] {
  const out: ShownItem[] = [];
  for (const item of items) {
    const args = item.command?.command === ACCEPTED_COMMAND ? item.command.arguments : undefined;
    if (args && typeof args[0] === 'string') {
      out.push({ id: args[0], text: typeof item.insertText === 'string' ? item.insertText : item.insertText.value });
    }
  }
  return out;
}

export interface PartialAccept {
  id: string;
  length: number;
}

/**
 * Whether `changes` (one change event) are a partial accept of a shown suggestion; the one
 * accepted is the first whose beginning was inserted.
 */
export function partialAccept(shown: Shown | undefined, changes: readonly Change[]): PartialAccept | undefined {
  if (!shown || changes.length !== 1) {
    return undefined;
  }
  const [change] = changes;
  const here =
    change.uri === shown.uri &&
    change.version === shown.version + 1 &&
    change.line === shown.line &&
    change.character === shown.character &&
    change.rangeLength === 0;
  if (!here || change.text.length < 2) {
    return undefined;
  }
  const item = shown.items.find((i) => i.text.length > change.text.length && i.text.startsWith(change.text));
  return item ? { id: item.id, length: change.text.length } : undefined;
}

/** Where the suggestions are after a partial accept: their rest, after the inserted text. */
export function advanced(shown: Shown, change: Change): Shown {
  const lines = change.text.split('\n');
  const line = shown.line + lines.length - 1;
  const character = lines.length > 1 ? lines[lines.length - 1].length : shown.character + change.text.length;
  const items = shown.items
    .filter((i) => i.text.length > change.text.length && i.text.startsWith(change.text))
    .map((i) => ({ id: i.id, text: i.text.slice(change.text.length) }));
  return { uri: shown.uri, version: change.version, line, character, items };
}

/** `workspace/executeCommand` parameters that report a partial accept. */
export function partialAcceptParams(accept: PartialAccept): { command: string; arguments: unknown[] } {
  return { command: ACCEPTED_COMMAND, arguments: [accept.id, 'partial', accept.length] };
}
