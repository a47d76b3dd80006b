/**
 * The Code Llama - Instruct commands of the extension: what they send to the server and what they
 * make of its answer. Docstrings, tests and fixes are code actions that vscode-languageclient
 * lists and resolves by itself; Edit Selection and Explain are `workspace/executeCommand`
 * requests (`codellama.edit`, `codellama.explain`). No `vscode` import, so it runs under `node --test`.
 */

export const EDIT_COMMAND = 'codellama.edit';
export const EXPLAIN_COMMAND = 'codellama.explain';
/** The server's progress tokens for actions; model loading uses `codellama-ls/load/...`. */
export const ACTION_PROGRESS_PREFIX = 'codellama-ls/action/';

export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

export interface ExecuteCommandParams {
  command: string;
  arguments: unknown[];
}

/** `codellama.edit` for the selection, or undefined when the user gave no instruction (Escape, blank). */
export function editRequest(
  uri: string,
  range: LspRange,
  instruction: string | undefined,
): ExecuteCommandParams | undefined {
  const text = instruction?.trim();
  if (!text) {
    return undefined;
  }
  return { command: EDIT_COMMAND, arguments: [{ uri, range, instruction: text }] };
}

/** `codellama.explain` for the selection (an empty one: the definition at the cursor). */
export function explainRequest(uri: string, range: LspRange): ExecuteCommandParams {
  return { command: EXPLAIN_COMMAND, arguments: [{ uri, range }] };
}

/** The markdown of a `codellama.explain` answer; undefined when there is none (the server said why). */
export function markdownOf(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) {
    return undefined;
  }
  const markdown = (result as { markdown?: unknown }).markdown;
  return typeof markdown === 'string' && markdown.trim() ? markdown : undefined;
}

/** The text of the preview: what was explained, then the server's markdown. */
export function explanationDocument(markdown: string, what: string): string {
  return `# Code Llama: ${what}\n\n${markdown.trim()}\n`;
}

/** Progress of an action (its own cancellable notification) rather than of model loading (the status bar). */
export function isActionProgress(token: string | number): boolean {
  return typeof token === 'string' && token.startsWith(ACTION_PROGRESS_PREFIX);
}
