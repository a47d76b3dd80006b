/**
 * Tell the server where the cursor rests (`codellama/warm`, a notification), so it computes that
 * place's prompt into its cache while the user reads: the first suggestion there then skips the
 * long prefill. A cursor move is sent once the cursor stays put for `delayMs`; a newly active
 * editor at once. The same place of the same text is sent once. No `vscode` import, so it runs
 * under `node --test`; extension.ts feeds it VS Code's events.
 */

export const WARM_METHOD = 'codellama/warm';

/** Where the cursor is: the document (its URI and version) and an LSP position. */
export interface Place {
  uri: string;
  version: number;
  line: number;
  character: number;
}

export interface WarmParams {
  textDocument: { uri: string };
  position: { line: number; character: number };
}

export function warmParams(place: Place): WarmParams {
  return { textDocument: { uri: place.uri }, position: { line: place.line, character: place.character } };
}

interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export class Warmer {
  private timer: unknown;
  private last = '';
  /** Notifications sent (for tests and the log). */
  sent = 0;

  constructor(
    private readonly send: (params: WarmParams) => void,
    public delayMs = 300,
    private readonly timers: Timers = {
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    },
  ) {}

  /** The cursor moved to `place`: send it when it has stayed there for `delayMs`. */
  moved(place: Place): void {
    this.cancel();
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.now(place);
    }, this.delayMs);
  }

  /** Another editor became active (a buffer was entered): send its place at once. */
  entered(place: Place): void {
    this.cancel();
    this.last = '';
    this.now(place);
  }

  /** The cursor left for something else (no editor, suggestions off): nothing is pending. */
  cancel(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private now(place: Place): void {
    const key = `${place.uri}\u0000${place.version}:${place.line}:${place.character}`;
    if (key === this.last) {
      return; // the same place of the same text: its prompt is computed already
    }
    this.last = key;
    this.sent += 1;
    this.send(warmParams(place));
  }

  dispose(): void {
    this.cancel();
  }
}
