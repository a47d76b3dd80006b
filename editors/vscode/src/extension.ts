/**
 * VS Code glue: starts codellama-ls, wires settings, status bar and commands.
 * The decisions live in settings.ts, status.ts and inline.ts (unit-tested without VS Code).
 */

import { accessSync, constants, statSync } from 'node:fs';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { ACCEPTED_COMMAND, advanced, Change, partialAccept, partialAcceptParams, Shown, shownItems } from './accept';
import { editRequest, explainRequest, explanationDocument, isActionProgress, LspRange, markdownOf } from './actions';
import { keepItems, shouldRequest } from './inline';
import {
  configurationChange,
  didChangeConfigurationParams,
  findExecutable,
  Manifest,
  manifestDefaults,
  needsRestart,
  notFoundHint,
  SECTION,
  serverCommand,
  ServerSettings,
  serverKeys,
  userSettings,
} from './settings';
import { pollDelayMs, StatusModel } from './status';
import { Place, WARM_METHOD, Warmer } from './warm';

const STATUS_METHOD = 'codellama/status';
const TOGGLE_COMMAND = 'codellama-ls.toggle';
const RESTART_COMMAND = 'codellama-ls.restart';
const OUTPUT_COMMAND = 'codellama-ls.showOutput';
const EDIT_SELECTION_COMMAND = 'codellama-ls.editSelection';
const EXPLAIN_COMMAND = 'codellama-ls.explain';
const STATUS_ITEM = 'codellama-ls.status';

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  session = new Session(context.extension.packageJSON as Manifest);
  context.subscriptions.push(
    session,
    vscode.commands.registerCommand(TOGGLE_COMMAND, () => session?.toggle()),
    vscode.commands.registerCommand(RESTART_COMMAND, () => session?.restart()),
    vscode.commands.registerCommand(OUTPUT_COMMAND, () => session?.output.show(true)),
    vscode.commands.registerCommand(EDIT_SELECTION_COMMAND, () => session?.editSelection()),
    vscode.commands.registerCommand(EXPLAIN_COMMAND, () => session?.explain()),
    vscode.workspace.onDidChangeConfiguration((e) => session?.onConfigurationChanged(e)),
    vscode.workspace.onDidChangeTextDocument((e) => session?.onDocumentChanged(e)),
    vscode.window.onDidChangeTextEditorSelection((e) => session?.onSelectionChanged(e)),
    vscode.window.onDidChangeActiveTextEditor((e) => session?.onActiveEditorChanged(e)),
  );
  await session.start();
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
}

/** An executable file (not a folder) on this machine: the extension host's, remote or local. */
function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

class Session implements vscode.Disposable {
  readonly output = vscode.window.createOutputChannel('Code Llama', { log: true });
  private readonly item = vscode.window.createStatusBarItem(STATUS_ITEM, vscode.StatusBarAlignment.Right, 100);
  private readonly keys: string[];
  private readonly defaults: ServerSettings;
  private readonly model = new StatusModel(config().get<boolean>('enable', true));
  private client: LanguageClient | undefined;
  /** `codellama/warm` where the cursor rests: the server computes that place's prompt ahead. */
  private readonly warmer = new Warmer((params) => {
    const client = this.client;
    if (client?.isRunning() && config().get<boolean>('enable', true)) {
      client.sendNotification(WARM_METHOD, params).catch(() => undefined); // only a hint: a lost one costs nothing
    }
  });
  /** What the server was last told (initializationOptions plus changes since). */
  private sent: ServerSettings = {};
  private pollTimer: NodeJS.Timeout | undefined;
  private pollAttempt = 0;
  /** The inline suggestions last shown, to recognise a partial accept (see accept.ts). */
  private shown: Shown | undefined;

  constructor(manifest: Manifest) {
    this.keys = serverKeys(manifest);
    this.defaults = manifestDefaults(manifest);
    this.item.name = 'Code Llama';
    this.item.command = TOGGLE_COMMAND;
    this.render();
    this.item.show();
  }

  async start(): Promise<void> {
    const cfg = config();
    const command = serverCommand(cfg.get('server.path'), cfg.get('server.args'));
    if (!findExecutable(command.command, process.env, isExecutable)) {
      this.failed(notFoundHint(command.command), `'${command.command}' is not an executable file or on PATH`);
      return;
    }
    const serverOptions: ServerOptions = { command: command.command, args: command.args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      initializationOptions: () => {
        this.sent = userSettings(this.keys, (key) => config().inspect(key));
        return this.sent;
      },
      middleware: {
        // VS Code runs an accepted item's command (the server's codellama.accepted) through here:
        // the status bar's acceptance line is refreshed after it.
        executeCommand: async (command, args, next) => {
          const result = await next(command, args);
          if (command === ACCEPTED_COMMAND) {
            this.poll(true);
          }
          return result;
        },
        handleWorkDoneProgress: (token, params, next) => {
          if (isActionProgress(token)) {
            next(token, params); // a code action's own cancellable notification, not model loading
            return;
          }
          this.model.setProgress(params);
          this.render();
          this.poll(params.kind === 'end');
          next(token, params);
        },
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const request = {
            enabled: config().get<boolean>('enable', true),
            inlineSuggestEnabled: vscode.workspace.getConfiguration('editor', document).get<boolean>('inlineSuggest.enabled'),
          };
          if (!shouldRequest(request)) {
            return null;
          }
          const requestedVersion = document.version;
          const answer = await next(document, position, context, token);
          const items = keepItems(answer, {
            requestedVersion,
            currentVersion: document.version,
            cancelled: token.isCancellationRequested,
          });
          if (items.length > 0) {
            const where = { line: position.line, character: position.character };
            this.shown = { uri: document.uri.toString(), version: requestedVersion, ...where, items: shownItems(items) };
          }
          return items;
        },
      },
    };
    const client = new LanguageClient('codellama-ls', 'Code Llama', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (client !== this.client) {
        return;
      }
      if (e.newState === State.Running) {
        this.model.setPhase('running');
        this.poll(true);
      } else if (e.newState === State.Starting) {
        this.model.setPhase('starting');
      } else {
        this.model.setPhase('stopped');
      }
      this.render();
    });
    this.model.setPhase('starting');
    this.render();
    try {
      await client.start();
    } catch (error) {
      // The language client has shown its own notification for this: one is enough.
      const message = error instanceof Error ? error.message : String(error);
      const hint = /ENOENT/.test(message) ? notFoundHint(command.command) : message;
      this.model.setPhase('stopped', hint);
      this.render();
      this.output.error(`codellama-ls did not start: ${message}`);
    }
  }

  /** The server cannot be started: the status item, the log and one notification say why. */
  private failed(hint: string, detail: string): void {
    this.model.setPhase('stopped', hint);
    this.render();
    this.output.error(`codellama-ls did not start: ${detail}`);
    void vscode.window.showErrorMessage(`Code Llama: ${hint}`, 'Show Log').then((choice) => {
      if (choice) {
        this.output.show(true);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopPolling();
    const client = this.client;
    this.client = undefined;
    if (client?.needsStop()) {
      await client.stop();
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async toggle(): Promise<void> {
    const cfg = config();
    const inspected = cfg.inspect<boolean>('enable');
    const target =
      inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    // The settings listener tells the server and updates the status bar.
    await cfg.update('enable', !cfg.get<boolean>('enable', true), target);
  }

  /** Code Llama: Edit Selection… — ask for an instruction; the server rewrites and sends the edit. */
  async editSelection(): Promise<void> {
    const target = this.target();
    if (!target) {
      return;
    }
    const instruction = await vscode.window.showInputBox({
      title: 'Code Llama: Edit Selection',
      prompt: 'How should the selection change?',
      placeHolder: 'e.g. use a dict comprehension',
      ignoreFocusOut: true,
    });
    const params = editRequest(target.uri, target.range, instruction);
    if (params) {
      await this.execute(params);
    }
  }

  /** Code Llama: Explain Selection — the server's markdown in a preview. */
  async explain(): Promise<void> {
    const target = this.target();
    if (!target) {
      return;
    }
    const markdown = markdownOf(await this.execute(explainRequest(target.uri, target.range)));
    if (!markdown) {
      return; // the server said why in a message
    }
    const what = target.empty ? `${target.name} (at the cursor)` : `${target.name} (selection)`;
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: explanationDocument(markdown, what) });
    await vscode.commands.executeCommand('markdown.showPreview', doc.uri);
  }

  /** The active editor's document and selection, in protocol terms. */
  private target(): { uri: string; range: LspRange; empty: boolean; name: string } | undefined {
    const editor = vscode.window.activeTextEditor;
    const client = this.client;
    if (!editor || !client?.isRunning()) {
      void vscode.window.showInformationMessage(
        editor ? 'Code Llama: the server is not running.' : 'Code Llama: open a file and select code first.',
      );
      return undefined;
    }
    const c2p = client.code2ProtocolConverter;
    const name = editor.document.uri.path.split('/').pop() ?? '';
    const range: LspRange = c2p.asRange(editor.selection);
    return { uri: c2p.asUri(editor.document.uri), range, empty: editor.selection.isEmpty, name };
  }

  private async execute(params: { command: string; arguments: unknown[] }): Promise<unknown> {
    try {
      return await this.client?.sendRequest(ExecuteCommandRequest.type, params);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(`Code Llama: ${message}`);
      return undefined;
    }
  }

  onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    this.model.setEnabled(config().get<boolean>('enable', true));
    this.render();
    if (needsRestart((section) => event.affectsConfiguration(section))) {
      void this.restart();
      return;
    }
    const current = userSettings(this.keys, (key) => config().inspect(key));
    const changes = configurationChange(this.sent, current, this.defaults);
    const client = this.client;
    if (!changes || !client?.isRunning()) {
      return;
    }
    this.sent = current;
    void client.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(changes));
    this.poll(true);
  }

  /** A word or line of the shown suggestion inserted at once: tell the server (accept.ts). */
  onSelectionChanged(event: vscode.TextEditorSelectionChangeEvent): void {
    const place = this.placeOf(event.textEditor);
    if (place) {
      this.warmer.moved(place);
    } else {
      this.warmer.cancel();
    }
  }

  onActiveEditorChanged(editor: vscode.TextEditor | undefined): void {
    const place = editor && this.placeOf(editor);
    if (place) {
      this.warmer.entered(place);
    } else {
      this.warmer.cancel();
    }
  }

  /** The cursor of `editor` as the server names it; none for a selection or a document it does not see. */
  private placeOf(editor: vscode.TextEditor): Place | undefined {
    const client = this.client;
    const doc = editor.document;
    if (!client?.isRunning() || !['file', 'untitled'].includes(doc.uri.scheme) || !editor.selection.isEmpty) {
      return undefined;
    }
    const active = editor.selection.active;
    const uri = client.code2ProtocolConverter.asUri(doc.uri);
    return { uri, version: doc.version, line: active.line, character: active.character };
  }

  onDocumentChanged(event: vscode.TextDocumentChangeEvent): void {
    const shown = this.shown;
    if (!shown || event.document.uri.toString() !== shown.uri || event.contentChanges.length === 0) {
      return;
    }
    const changes: Change[] = event.contentChanges.map((c) => ({
      uri: event.document.uri.toString(),
      version: event.document.version,
      line: c.range.start.line,
      character: c.range.start.character,
      rangeLength: c.rangeLength,
      text: c.text,
    }));
    const accept = partialAccept(shown, changes);
    this.shown = accept ? advanced(shown, changes[0]) : undefined;
    const client = this.client;
    if (accept && client?.isRunning()) {
      client.sendRequest(ExecuteCommandRequest.type, partialAcceptParams(accept)).then(
        () => this.poll(true),
        (error: unknown) => this.output.debug(`reporting a partial accept failed: ${String(error)}`),
      );
    }
  }

  /** Ask `codellama/status` now (restart=true) or keep polling while it can change on its own. */
  private poll(restart: boolean): void {
    if (restart) {
      this.stopPolling();
      this.pollAttempt = 0;
    } else if (this.pollTimer) {
      return;
    }
    this.pollTimer = setTimeout(() => void this.pollOnce(), restart ? 0 : pollDelayMs(this.pollAttempt));
  }

  private async pollOnce(): Promise<void> {
    const client = this.client;
    if (!client?.isRunning()) {
      this.pollTimer = undefined;
      return;
    }
    try {
      this.model.setStatus(await client.sendRequest(STATUS_METHOD, {}));
      this.render();
    } catch (error) {
      this.output.debug(`${STATUS_METHOD} failed: ${String(error)}`);
    }
    this.pollTimer = undefined;
    if (client === this.client && this.model.needsPolling()) {
      this.pollAttempt += 1;
      this.poll(false);
    }
  }

  private stopPolling(): void {
    if (this.pollTimer) {
      clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  private render(): void {
    const view = this.model.view();
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'normal' ? undefined : new vscode.ThemeColor(`statusBarItem.${view.severity}Background`);
  }

  dispose(): void {
    this.stopPolling();
    this.warmer.dispose();
    this.item.dispose();
    this.output.dispose();
  }
}
