/**
 * What the status-bar item says, from three sources: the client's own state (starting,
 * running, stopped), `$/progress` while the model loads, and the `codellama/status` answer.
 * No `vscode` import, so it runs under `node --test`.
 */

export type EngineState = 'idle' | 'loading' | 'ready' | 'failed';
export type ClientPhase = 'starting' | 'running' | 'stopped';

/** The part of the `codellama/status` answer the status bar uses. */
export interface ServerStatus {
  state: EngineState;
  error?: string | null;
  model?: string;
  engine?: string;
  enabled?: boolean;
  /** Acceptance counts (kept in the server's memory only), by source: model, typed, cache. */
  acceptance?: { bySource?: Record<string, AcceptanceCounts> };
}

export interface AcceptanceCounts {
  shown: number;
  accepted: number;
  partlyAccepted: number;
}

/** "Accepted 2 of 5 suggestions (40%), 1 in part": all sources together; '' before any was shown. */
export function acceptanceLine(status: ServerStatus | undefined): string {
  const counts = Object.values(status?.acceptance?.bySource ?? {});
  const sum = (key: keyof AcceptanceCounts) => counts.reduce((total, c) => total + (Number(c?.[key]) || 0), 0);
  const shown = sum('shown');
  if (shown === 0) {
    return '';
  }
  const accepted = sum('accepted');
  const rate = Math.round((100 * accepted) / shown);
  return `Accepted ${accepted} of ${shown} suggestions (${rate}%), ${sum('partlyAccepted')} in part.`;
}

/** `$/progress` values of a work-done progress (begin / report / end). */
export interface ProgressValue {
  kind: 'begin' | 'report' | 'end';
  title?: string;
  message?: string;
  percentage?: number;
}

export type Severity = 'normal' | 'warning' | 'error';

export interface StatusView {
  text: string;
  tooltip: string;
  severity: Severity;
}

const NAME = 'Code Llama';
const RESTART_HINT = 'Run "Code Llama: Restart Server" to try again.';

export class StatusModel {
  private phase: ClientPhase = 'starting';
  private server: ServerStatus | undefined;
  private progress: ProgressValue | undefined;
  private clientError: string | undefined;

  constructor(private enabled: boolean) {}

  setPhase(phase: ClientPhase, error?: string): void {
    this.phase = phase;
    this.clientError = phase === 'stopped' ? error : undefined;
    if (phase !== 'running') {
      this.server = undefined;
      this.progress = undefined;
    }
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
  }

  /** A `codellama/status` answer; anything that is not a status object is ignored. */
  setStatus(status: unknown): void {
    if (!isStatus(status)) {
      return;
    }
    this.server = status;
    if (status.state !== 'loading') {
      this.progress = undefined;
    }
  }

  /** A `$/progress` value: begin/report show the percentage; end waits for the next status. */
  setProgress(value: ProgressValue): void {
    if (value.kind === 'end') {
      this.progress = undefined;
      return;
    }
    this.progress = { ...this.progress, ...value };
    if (this.server === undefined || this.server.state !== 'loading') {
      this.server = { ...(this.server ?? {}), state: 'loading' };
    }
  }

  /** Poll `codellama/status` while the answer can still change on its own (starting, loading). */
  needsPolling(): boolean {
    if (this.phase !== 'running') {
      return false;
    }
    return this.server === undefined || this.server.state === 'idle' || this.server.state === 'loading';
  }

  get state(): EngineState | ClientPhase {
    return this.phase === 'running' && this.server ? this.server.state : this.phase;
  }

  view(): StatusView {
    if (this.phase === 'stopped') {
      const why = this.clientError ? `codellama-ls stopped: ${this.clientError}` : 'codellama-ls is not running.';
      return { text: `$(error) ${NAME}`, tooltip: `${why}\n${RESTART_HINT}`, severity: 'error' };
    }
    if (this.phase === 'starting' || this.server === undefined) {
      return { text: `$(loading~spin) ${NAME}`, tooltip: 'Starting codellama-ls…', severity: 'normal' };
    }
    const model = this.server.model ? ` ${this.server.model}` : '';
    switch (this.server.state) {
      case 'idle':
      case 'loading': {
        const pct = this.progress?.percentage;
        const text = `$(loading~spin) ${NAME}` + (pct !== undefined ? ` ${Math.round(pct)}%` : '');
        const detail = this.progress?.message ? `: ${this.progress.message}` : '…';
        return { text, tooltip: `Loading${model}${detail}`, severity: 'normal' };
      }
      case 'failed': {
        const error = this.server.error || 'the model failed to load';
        return { text: `$(error) ${NAME}`, tooltip: `${error}\n${RESTART_HINT}`, severity: 'error' };
      }
      case 'ready': {
        // The setting is the source of truth; the server's own flag can lag one round trip.
        if (!this.enabled) {
          return {
            text: `$(circle-slash) ${NAME}`,
            tooltip: `Suggestions are off (model${model} loaded). Click to turn them on.`,
            severity: 'warning',
          };
        }
        const engine = this.server.engine && this.server.engine !== 'local' ? ` via ${this.server.engine}` : '';
        const accepted = acceptanceLine(this.server);
        return {
          text: `$(check) ${NAME}`,
          tooltip: `Ready:${model}${engine}. Click to turn suggestions off.` + (accepted ? `\n${accepted}` : ''),
          severity: 'normal',
        };
      }
    }
  }
}

const STATES: readonly string[] = ['idle', 'loading', 'ready', 'failed'];

export function isStatus(value: unknown): value is ServerStatus {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { state?: unknown }).state === 'string' &&
    STATES.includes((value as { state: string }).state)
  );
}

/** Delay before the next `codellama/status` poll: quick at first, then every 2 s. */
export function pollDelayMs(attempt: number): number {
  return Math.min(250 * 2 ** attempt, 2000);
}
