/**
 * VS Code glue: starts codellama-ls, wires settings, status bar and commands.
 * The decisions live in settings.ts, status.ts and inline.ts (unit-tested without VS Code).
 */

import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { keepItems, shouldRequest } from './inline';
import {
  configurationChange,
  didChangeConfigurationParams,
  Manifest,
  manifestDefaults,
  needsRestart,
  SECTION,
  serverCommand,
  ServerSettings,
  serverKeys,
  userSettings,
} from './settings';
import { pollDelayMs, StatusModel } from './status';

const STATUS_METHOD = 'codellama/status';
const TOGGLE_COMMAND = 'codellama-ls.toggle';
const RESTART_COMMAND = 'codellama-ls.restart';
const OUTPUT_COMMAND = 'codellama-ls.showOutput';
const STATUS_ITEM = 'codellama-ls.status';

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  session = new Session(context.extension.packageJSON as Manifest);
  context.subscriptions.push(
    session,
    vscode.commands.registerCommand(TOGGLE_COMMAND, () => session?.toggle()),
    vscode.commands.registerCommand(RESTART_COMMAND, () => session?.restart()),
    vscode.commands.registerCommand(OUTPUT_COMMAND, () => session?.output.show(true)),
    vscode.workspace.onDidChangeConfiguration((e) => session?.onConfigurationChanged(e)),
  );
  await session.start();
}

export async function deactivate(): Promise<void> {
  await session?.stop();
  session = undefined;
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
  /** What the server was last told (initializationOptions plus changes since). */
  private sent: ServerSettings = {};
  private pollTimer: NodeJS.Timeout | undefined;
  private pollAttempt = 0;

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
    const serverOptions: ServerOptions = { command: command.command, args: command.args, transport: TransportKind.stdio };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      initializationOptions: () => {
        this.sent = userSettings(this.keys, (key) => config().inspect(key));
        return this.sent;
      },
      middleware: {
        handleWorkDoneProgress: (token, params, next) => {
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
          return keepItems(answer, {
            requestedVersion,
            currentVersion: document.version,
            cancelled: token.isCancellationRequested,
          });
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
      const message = error instanceof Error ? error.message : String(error);
      const hint = /ENOENT/.test(message)
        ? `'${command.command}' was not found; install codellama-ls or set codellama.server.path.`
        : message;
      this.model.setPhase('stopped', hint);
      this.render();
      this.output.error(`codellama-ls did not start: ${message}`);
      void vscode.window.showErrorMessage(`Code Llama: ${hint}`, 'Show Log').then((choice) => {
        if (choice) {
          this.output.show(true);
        }
      });
    }
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
    this.item.dispose();
    this.output.dispose();
  }
}
