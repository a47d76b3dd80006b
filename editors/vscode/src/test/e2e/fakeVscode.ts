/**
 * Just enough of the `vscode` module to activate the extension under node and let
 * vscode-languageclient talk to a real server: settings, status bar, commands, one text
 * document and the inline completion provider are real objects the test can inspect;
 * everything else is an inert stand-in (see `inert`).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

type Listener<T> = (event: T) => unknown;

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>, thisArgs?: unknown, disposables?: Disposable[]): Disposable => {
    const bound: Listener<T> = thisArgs === undefined ? listener : listener.bind(thisArgs);
    this.listeners.add(bound);
    const disposable = new Disposable(() => this.listeners.delete(bound));
    disposables?.push(disposable);
    return disposable;
  };
  fire(event: T): void {
    for (const listener of [...this.listeners]) {
      listener(event);
    }
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Disposable {
  constructor(private readonly callOnDispose: () => unknown = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item?.dispose?.()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c!, d!) : (b as Position);
  }
}

/** The editor's selection: a range that knows whether it is empty. */
export class Selection extends Range {
  get isEmpty(): boolean {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  static parse(value: string): Uri {
    const match = /^([a-z][\w+.-]*):(?:\/\/)?(.*)$/i.exec(value);
    return match ? new Uri(match[1], match[2].startsWith('/') ? match[2] : '/' + match[2]) : new Uri('file', value);
  }
  static file(path: string): Uri {
    return new Uri('file', path);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return `${this.scheme}://${this.path}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

export class SnippetString {
  constructor(readonly value = '') {}
}

export class InlineCompletionItem {
  filterText?: string;
  constructor(
    readonly insertText: string | SnippetString,
    readonly range?: Range,
    readonly command?: unknown,
  ) {}
}

export class InlineCompletionList {
  constructor(readonly items: InlineCompletionItem[]) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class CancellationError extends Error {}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  readonly token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}
export enum InlineCompletionTriggerKind {
  Invoke = 0,
  Automatic = 1,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum LogLevel {
  Off = 0,
  Trace = 1,
  Debug = 2,
  Info = 3,
  Warning = 4,
  Error = 5,
}

/** A stand-in for any API the test does not care about: callable, constructible, every property another stand-in. */
function inert(name: string): any {
  const target = function () {} as any;
  return new Proxy(target, {
    get(_t, prop) {
      if (prop === 'then') return undefined; // not a promise
      if (prop === Symbol.iterator) return function* () {};
      if (prop === Symbol.toPrimitive) return () => 0;
      if (prop === 'dispose') return () => undefined;
      if (prop === 'toString') return () => `[fake ${name}]`;
      return inert(`${name}.${String(prop)}`);
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`),
  });
}

/** The module object itself: the stand-ins above, inert ones for every other name. */
export function asModule(exports: Record<string, unknown>): Record<string, unknown> {
  return withFallback('vscode', exports);
}

function withFallback<T extends object>(name: string, real: T): T {
  return new Proxy(real, {
    get(target, prop, receiver) {
      return prop in target ? Reflect.get(target, prop, receiver) : inert(`${name}.${String(prop)}`);
    },
  });
}

// ---------------------------------------------------------------------------- state

export const settings: Record<string, unknown> = {};
export const messages: string[] = [];
export const commandHandlers = new Map<string, (...args: unknown[]) => unknown>();
export const inlineProviders: any[] = [];
export const statusItems: any[] = [];
const configurationChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
const opened = new EventEmitter<any>();
const changed = new EventEmitter<any>();

function configuration(section?: string): any {
  const full = (key: string) => (section ? `${section}.${key}` : key);
  return {
    get: (key: string, fallback?: unknown) => (full(key) in settings ? settings[full(key)] : fallback),
    has: (key: string) => full(key) in settings,
    inspect: (key: string) => ({ key: full(key), globalValue: settings[full(key)] }),
    update: async (key: string, value: unknown) => setSetting(full(key), value),
  };
}

/** What the user does in settings.json: change a value and tell listeners. */
export function setSetting(key: string, value: unknown): void {
  if (value === undefined) {
    delete settings[key];
  } else {
    settings[key] = value;
  }
  configurationChanged.fire({ affectsConfiguration: (section) => key === section || key.startsWith(section + '.') });
}

export class TextDocument {
  readonly isClosed = false;
  readonly isDirty = false;
  readonly isUntitled = false;
  readonly eol = 1;
  readonly encoding = 'utf8';
  constructor(
    readonly uri: Uri,
    readonly languageId: string,
    public version: number,
    private text: string,
  ) {}
  get fileName(): string {
    return this.uri.fsPath;
  }
  get lineCount(): number {
    return this.text.split('\n').length;
  }
  getText(): string {
    return this.text;
  }
  /** Insert `text` at a position, as typing or accepting part of a suggestion does (an incremental change). */
  insert(line: number, character: number, text: string): void {
    const lines = this.text.split('\n');
    const offset = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0) + character;
    const change = { range: new Range(line, character, line, character), rangeOffset: offset, rangeLength: 0, text };
    this.text = this.text.slice(0, offset) + text + this.text.slice(offset);
    this.version += 1;
    changed.fire({ document: this, contentChanges: [change], reason: undefined });
  }

  /** Replace the whole text, as typing would (a full-document change event). */
  setText(text: string): void {
    const lines = this.text.split('\n');
    const range = new Range(0, 0, lines.length - 1, lines[lines.length - 1].length);
    const change = { range, rangeOffset: 0, rangeLength: this.text.length, text };
    this.text = text;
    this.version += 1;
    changed.fire({ document: this, contentChanges: [change], reason: undefined });
  }
}

export const textDocuments: TextDocument[] = [];
/** Documents the extension opened (`openTextDocument({ language, content })`). */
export const openedDocuments: TextDocument[] = [];
/** Edits the server sent through `workspace/applyEdit`, as the language client converted them. */
export const appliedEdits: unknown[] = [];
/** Every `commands.executeCommand` call, registered here or not (e.g. `markdown.showPreview`). */
export const executedCommands: { id: string; args: unknown[] }[] = [];
/** What the next input boxes answer (undefined: the user pressed Escape). */
export const inputAnswers: (string | undefined)[] = [];

export function openDocument(doc: TextDocument): void {
  textDocuments.push(doc);
  opened.fire(doc);
}

export const version = '1.91.0';

export const workspace = withFallback('workspace', {
  getConfiguration: configuration,
  onDidChangeConfiguration: configurationChanged.event,
  onDidOpenTextDocument: opened.event,
  onDidChangeTextDocument: changed.event,
  textDocuments,
  openTextDocument: async (options: { language: string; content: string }) => {
    const doc = new TextDocument(Uri.parse(`untitled:/Untitled-${openedDocuments.length + 1}`), options.language, 1, options.content);
    openedDocuments.push(doc);
    return doc;
  },
  applyEdit: async (edit: unknown) => {
    appliedEdits.push(edit);
    return true;
  },
  notebookDocuments: [],
  workspaceFolders: undefined,
});

export const window = withFallback('window', {
  createOutputChannel: (name: string) =>
    withFallback('outputChannel', {
      name,
      logLevel: LogLevel.Info,
      onDidChangeLogLevel: new EventEmitter<number>().event,
      appendLine: (line: string) => messages.push(`[${name}] ${line}`),
      append: () => undefined,
      info: (line: string) => messages.push(`[${name}] ${line}`),
      warn: (line: string) => messages.push(`[${name}] ${line}`),
      error: (line: unknown) => messages.push(`[${name}] ${String(line)}`),
      debug: () => undefined,
      trace: () => undefined,
      show: () => undefined,
      dispose: () => undefined,
    }),
  createStatusBarItem: () => {
    const history: string[] = [];
    let text = '';
    const item = {
      history, // every text the item showed, in order
      get text() {
        return text;
      },
      set text(value: string) {
        text = value;
        history.push(value);
      },
      tooltip: '',
      show: () => undefined,
      hide: () => undefined,
      dispose: () => undefined,
    };
    statusItems.push(item);
    return item;
  },
  showErrorMessage: async (message: string) => void messages.push(`error: ${message}`),
  showWarningMessage: async (message: string) => void messages.push(`warning: ${message}`),
  showInformationMessage: async (message: string) => void messages.push(`info: ${message}`),
  showInputBox: async () => inputAnswers.shift(),
  withProgress: async (_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>) =>
    task({ report: () => undefined }, new CancellationTokenSource().token),
  visibleTextEditors: [],
  activeTextEditor: undefined,
  tabGroups: { all: [], onDidChangeTabs: new EventEmitter<unknown>().event },
});

export const languages = withFallback('languages', {
  match: () => 10,
  registerInlineCompletionItemProvider: (_selector: unknown, provider: unknown) => {
    inlineProviders.push(provider);
    return new Disposable(() => inlineProviders.splice(inlineProviders.indexOf(provider), 1));
  },
});

export const commands = withFallback('commands', {
  registerCommand: (id: string, handler: (...args: unknown[]) => unknown) => {
    if (commandHandlers.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    commandHandlers.set(id, handler);
    return new Disposable(() => commandHandlers.delete(id));
  },
  executeCommand: async (id: string, ...args: unknown[]) => {
    executedCommands.push({ id, args });
    return commandHandlers.get(id)?.(...args);
  },
});

export const env = withFallback('env', { language: 'en', appName: 'fake-vscode', machineId: 'test' });
export const l10n = { t: (message: string) => message };
