/**
 * The extension's messages against the real server: the initializationOptions and
 * didChangeConfiguration payloads built by settings.ts are accepted, `$/progress` and
 * `codellama/status` drive the status model to "ready" / "failed", and inline answers pass
 * through inline.ts. Needs the server and a tiny model, so `npm test` leaves it out;
 * tests/test_vscode_extension.py runs it with
 *   CODELLAMA_LS_TEST_PYTHON=python CODELLAMA_LS_TEST_MODEL=/tiny/model node --test out/test/e2e/
 */

import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  ProtocolConnection,
  ShowMessageNotification,
  ShutdownRequest,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageserver-protocol/node';

import { keepItems } from '../../inline';
import {
  configurationChange,
  didChangeConfigurationParams,
  Inspected,
  Manifest,
  manifestDefaults,
  ServerSettings,
  serverCommand,
  serverKeys,
  userSettings,
} from '../../settings';
import { isStatus, ProgressValue, ServerStatus, StatusModel } from '../../status';

const python = process.env.CODELLAMA_LS_TEST_PYTHON;
const tinyModel = process.env.CODELLAMA_LS_TEST_MODEL;
const skip = python && tinyModel ? false : 'set CODELLAMA_LS_TEST_PYTHON and CODELLAMA_LS_TEST_MODEL';
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as Manifest;
const keys = serverKeys(manifest);
const uri = 'file:///tmp/codellama-vscode-e2e/add.py';

/** What VS Code's settings would report after the user set `values` in settings.json. */
function userSet(values: ServerSettings): (key: string) => Inspected {
  return (key) => ({ defaultValue: manifestDefaults(manifest)[key], globalValue: values[key] });
}

describe('extension ↔ codellama-ls', { skip, timeout: 120_000 }, () => {
  let server: ChildProcess;
  let connection: ProtocolConnection;
  const model = new StatusModel(true);
  const progress: ProgressValue[] = [];
  const messages: string[] = [];
  let sent: ServerSettings = {};

  async function status(): Promise<ServerStatus & { settings: ServerSettings }> {
    const answer = await connection.sendRequest('codellama/status', {});
    assert.ok(isStatus(answer), JSON.stringify(answer));
    model.setStatus(answer);
    return answer as ServerStatus & { settings: ServerSettings };
  }

  /** Poll like the extension does until the status model stops asking (and `until` holds). */
  async function settle(until: () => boolean = () => true): Promise<void> {
    await status();
    for (let i = 0; model.needsPolling() || !until(); i++) {
      assert.ok(i < 600, `server stayed ${model.state}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await status();
    }
  }

  async function change(values: ServerSettings): Promise<ServerSettings | undefined> {
    const current = userSettings(keys, userSet(values));
    const changes = configurationChange(sent, current, manifestDefaults(manifest));
    sent = current;
    if (changes) {
      await connection.sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(changes));
    }
    return changes;
  }

  async function suggest(): Promise<string[]> {
    const answer = await connection.sendRequest(InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line: 1, character: 11 },
      context: { triggerKind: InlineCompletionTriggerKind.Automatic },
    });
    const items = keepItems(answer, { requestedVersion: 1, currentVersion: 1, cancelled: false });
    return items.map((item) => (typeof item.insertText === 'string' ? item.insertText : item.insertText.value));
  }

  before(async () => {
    const command = serverCommand(python, ['-m', 'codellama_ls', '--log-level', 'WARNING']);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CODELLAMA_LS_')));
    server = spawn(command.command, command.args, {
      env: { ...env, HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    connection = createProtocolConnection(server.stdout!, server.stdin!);
    connection.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      connection.onProgress(WorkDoneProgress.type, token, (value) => {
        progress.push(value);
        model.setProgress(value);
      });
    });
    connection.onNotification(ShowMessageNotification.type, ({ message }) => {
      messages.push(message);
    });
    connection.listen();
    sent = userSettings(keys, userSet({ model: tinyModel, maxNewTokens: 8, debounceMs: 0 }));
    await connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: { window: { workDoneProgress: true }, textDocument: { inlineCompletion: {} } },
      initializationOptions: sent,
    });
    model.setPhase('running');
    await connection.sendNotification(InitializedNotification.type, {});
  });

  after(async () => {
    if (connection) {
      await connection.sendRequest(ShutdownRequest.type, undefined);
      await connection.sendNotification(ExitNotification.type);
      connection.dispose();
    }
    server?.kill();
  });

  it('sends only the user-set settings, and the server applies them', async () => {
    assert.deepEqual(sent, { model: tinyModel, maxNewTokens: 8, debounceMs: 0 });
    await settle();
    const st = await status();
    assert.equal(st.model, tinyModel);
    assert.equal(st.settings.maxNewTokens, 8);
    assert.equal(st.settings.fimFormat, 'spm', 'an unset setting keeps the server default');
  });

  it('shows load progress, then ready', () => {
    assert.ok(progress.some((p) => p.kind === 'begin'), JSON.stringify(progress));
    assert.ok(progress.some((p) => p.kind === 'end'), JSON.stringify(progress));
    assert.equal(model.state, 'ready');
    assert.equal(model.view().text, '$(check) Code Llama');
  });

  it('turns inline answers into ghost-text items', async () => {
    await connection.sendNotification(DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: 'python', version: 1, text: 'def add(a, b):\n    return \n' },
    });
    const texts = await suggest();
    assert.equal(texts.length, 1);
    assert.ok(texts[0].length > 0);
  });

  it('a settings change reaches the server as didChangeConfiguration', async () => {
    const changes = await change({ model: tinyModel, maxNewTokens: 8, debounceMs: 0, enable: false });
    assert.deepEqual(changes, { enable: false });
    const st = await status();
    assert.equal(st.enabled, false);
    assert.deepEqual(await suggest(), [], 'no suggestion while disabled');
    // Removing a setting sends its default back.
    assert.deepEqual(await change({ model: tinyModel, debounceMs: 0 }), { maxNewTokens: 128, enable: true });
    const again = await status();
    assert.equal(again.enabled, true);
    assert.equal(again.settings.maxNewTokens, 128);
  });

  it('a model that cannot load shows the server error', async () => {
    await change({ model: '/nonexistent/codellama-model', debounceMs: 0 });
    await settle(() => model.state !== 'ready');
    const view = model.view();
    assert.equal(model.state, 'failed');
    assert.equal(view.severity, 'error');
    assert.match(view.tooltip, /nonexistent/);
    assert.ok(messages.some((m) => m.includes('nonexistent')), JSON.stringify(messages));
  });
});
