/**
 * The whole extension (extension.ts + vscode-languageclient) activated under node against
 * the real server, with a stand-in `vscode` module (fakeVscode.ts): the server starts from
 * `codellama.server.path/args`, the status bar goes to ready, VS Code's inline provider
 * returns the server's suggestion, and the toggle command turns suggestions off and on.
 * Run by tests/test_vscode_extension.py with CODELLAMA_LS_TEST_PYTHON / CODELLAMA_LS_TEST_MODEL.
 */

import * as assert from 'node:assert/strict';
import Module = require('node:module');
import { after, before, describe, it } from 'node:test';

import * as fake from './fakeVscode';

const python = process.env.CODELLAMA_LS_TEST_PYTHON;
const tinyModel = process.env.CODELLAMA_LS_TEST_MODEL;
const skip = python && tinyModel ? false : 'set CODELLAMA_LS_TEST_PYTHON and CODELLAMA_LS_TEST_MODEL';

// `require('vscode')` anywhere (extension.ts, vscode-languageclient) gets the stand-in.
const vscodeModule = fake.asModule(fake as Record<string, unknown>);
const loader = Module as unknown as { _load(request: string, ...rest: unknown[]): unknown };
const originalLoad = loader._load;
loader._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscodeModule : originalLoad.call(this, request, ...rest);
};

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; messages: ${fake.messages.join(' | ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function status(): { text: string; tooltip: string; history: string[] } {
  return fake.statusItems[0];
}

async function inlineItems(
  doc: fake.TextDocument,
  line: number,
  character: number,
  triggerKind = fake.InlineCompletionTriggerKind.Automatic,
): Promise<fake.InlineCompletionItem[]> {
  const provider = await until('the inline completion provider', () => fake.inlineProviders[0]);
  const token = new fake.CancellationTokenSource().token;
  const context = { triggerKind, selectedCompletionInfo: undefined };
  const answer = await provider.provideInlineCompletionItems(doc, new fake.Position(line, character), context, token);
  return Array.isArray(answer) ? answer : (answer?.items ?? []);
}

function textOf(item: fake.InlineCompletionItem): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

async function suggest(doc: fake.TextDocument, line: number, character: number): Promise<string[]> {
  return (await inlineItems(doc, line, character)).map(textOf);
}

interface Command {
  command: string;
  arguments: unknown[];
}

describe('the extension in a stand-in VS Code', { skip, timeout: 180_000 }, () => {
  // Loaded only when the test runs, after the `vscode` hook is in place.
  let extension: typeof import('../../extension');
  const doc = new fake.TextDocument(
    fake.Uri.file('/tmp/codellama-vscode-e2e/calc.py'),
    'python',
    1,
    'def add(a, b):\n    return \n',
  );

  before(async () => {
    Object.assign(fake.settings, {
      'codellama.server.path': python,
      'codellama.server.args': ['-m', 'codellama_ls', '--log-level', 'WARNING'],
      'codellama.model': tinyModel,
      'codellama.maxNewTokens': 8,
      'codellama.suggestions': 4,
      // Code actions: the tiny model stands in for an Instruct model (it writes nonsense, quickly).
      'codellama.instructModel': tinyModel,
      'codellama.instructMaxNewTokens': 24,
    });
    process.env.HF_HUB_OFFLINE = '1';
    for (const key of Object.keys(process.env).filter((k) => k.startsWith('CODELLAMA_LS_'))) {
      delete process.env[key];
    }
    extension = require('../../extension');
    const manifest = require('../../../package.json');
    await extension.activate({ subscriptions: [], extension: { packageJSON: manifest } } as any);
  });

  after(async () => {
    await extension?.deactivate();
  });

  it('starts the server and shows ready in the status bar', async () => {
    await until('ready in the status bar', () => status()?.text === '$(check) Code Llama');
    assert.match(status().tooltip, /Ready:/);
    const percentages = status().history.filter((text) => /^\$\(loading~spin\) Code Llama \d+%$/.test(text));
    assert.ok(percentages.length > 0, `no $/progress percentage shown: ${JSON.stringify(status().history)}`);
    assert.ok(status().tooltip.includes(tinyModel!), 'the model from settings reached the server');
  });

  it('shows the server suggestion as an inline item', async () => {
    fake.openDocument(doc);
    const texts = await suggest(doc, 1, 11);
    assert.equal(texts.length, 1);
    assert.ok(texts[0].trim().length > 0, JSON.stringify(texts));
  });

  it('asked explicitly, lists several suggestions whose acceptance the server counts', async () => {
    const typing = await inlineItems(doc, 1, 11);
    const items = await inlineItems(doc, 1, 11, fake.InlineCompletionTriggerKind.Invoke);
    const texts = items.map(textOf);
    assert.ok(texts.length >= 2 && new Set(texts).size === texts.length, JSON.stringify(texts));
    assert.equal(texts[0], textOf(typing[0])); // the first is the greedy one typing got
    const commands = items.map((item) => item.command as Command);
    for (const [i, command] of commands.entries()) {
      assert.equal(command.command, 'codellama.accepted');
      assert.deepEqual(command.arguments.slice(1), ['full', texts[i].length]);
    }
    // What VS Code does when the user accepts the second suggestion: run its command.
    const second = commands[1];
    assert.equal(await fake.commands.executeCommand(second.command, ...second.arguments), true);
    await until('the count in the status bar', () => /Accepted 1 of \d+ suggestions \(\d+%\), 0 in part/.test(status().tooltip));
  });

  it('reports a word of a suggestion accepted with Ctrl+Right as a partial accept', async () => {
    const texts = (await inlineItems(doc, 1, 11)).map(textOf);
    const word = texts[0].slice(0, 2);
    doc.insert(1, 11, word); // VS Code inserts the word in one edit
    await until('the partial accept in the status bar', () => /, 1 in part\.$/.test(status().tooltip));
    doc.setText('def add(a, b):\n    return \n'); // back to the text the other tests expect
  });

  it('drops an answer once the document changed', async () => {
    const provider = fake.inlineProviders[0];
    const token = new fake.CancellationTokenSource().token;
    const pending = provider.provideInlineCompletionItems(doc, new fake.Position(1, 11), { triggerKind: 1 }, token);
    doc.setText('def add(a, b):\n    return a\n');
    const answer = await pending;
    assert.deepEqual(answer, []);
  });

  it('toggles suggestions off and on with the command', async () => {
    // A document of its own: in `doc` the text typed after an explicit request may follow several of
    // the (sampled) suggestions shown there, and typing through keeps every one it follows.
    const other = new fake.TextDocument(fake.Uri.file('/tmp/codellama-vscode-e2e/toggle.py'), 'python', 1, 'def mul(a, b):\n    return \n');
    fake.openDocument(other);
    await fake.commands.executeCommand('codellama-ls.toggle');
    assert.equal(fake.settings['codellama.enable'], false);
    await until('the off state', () => status().text === '$(circle-slash) Code Llama');
    assert.deepEqual(await suggest(other, 1, 11), []);
    await fake.commands.executeCommand('codellama-ls.toggle');
    await until('ready again', () => status().text === '$(check) Code Llama');
    assert.equal((await suggest(other, 1, 11)).length, 1);
  });

  it('Edit Selection asks for an instruction and the server edits through workspace/applyEdit', async () => {
    const calc = new fake.TextDocument(fake.Uri.file('/tmp/codellama-vscode-e2e/edit.py'), 'python', 1, 'def add(a, b):\n    return a + b\n');
    fake.openDocument(calc);
    (fake.window as any).activeTextEditor = { document: calc, selection: new fake.Selection(0, 0, 1, 16) };
    const before = { edits: fake.appliedEdits.length, messages: fake.messages.length };
    fake.inputAnswers.push(undefined); // Escape: nothing is sent
    await fake.commands.executeCommand('codellama-ls.editSelection');
    fake.inputAnswers.push('add type hints');
    await fake.commands.executeCommand('codellama-ls.editSelection');
    // The random model's answer becomes an edit, or the server says it had nothing usable.
    const said = () => fake.messages.slice(before.messages).find((m) => m.includes('Edit: add type hints'));
    await until('an edit or a message', () => fake.appliedEdits.length > before.edits || said());
    assert.ok(fake.appliedEdits.length === before.edits + 1 || /nothing usable/.test(said() ?? ''), fake.messages.join('\n'));
  });

  it('Explain Selection opens the markdown in a preview', async () => {
    const calc = fake.textDocuments.find((d) => d.uri.path.endsWith('edit.py'))!;
    (fake.window as any).activeTextEditor = { document: calc, selection: new fake.Selection(0, 4, 0, 4) };
    await fake.commands.executeCommand('codellama-ls.explain');
    const [preview] = fake.openedDocuments;
    assert.ok(preview, fake.messages.join('\n'));
    assert.equal(preview.languageId, 'markdown');
    assert.match(preview.getText(), /^# Code Llama: edit\.py \(at the cursor\)\n\n\S/);
    const shown = fake.executedCommands.find((c) => c.id === 'markdown.showPreview');
    assert.equal(shown?.args[0], preview.uri);
  });

  it('shows a model that cannot load as an error', async () => {
    fake.setSetting('codellama.model', '/nonexistent/codellama-model');
    await until('the error state', () => status().text === '$(error) Code Llama');
    assert.match(status().tooltip, /nonexistent/);
  });

  it('restarts the server when its command changes', async () => {
    fake.setSetting('codellama.model', tinyModel);
    await until('ready with the model back', () => status().text === '$(check) Code Llama');
    const mark = status().history.length;
    fake.setSetting('codellama.server.args', ['-m', 'codellama_ls', '--log-level', 'ERROR']);
    await until('ready after the restart', () => {
      const since = status().history.slice(mark);
      return since.includes('$(loading~spin) Code Llama') && since.at(-1) === '$(check) Code Llama';
    });
    assert.ok(!status().history.slice(mark).includes('$(error) Code Llama'));
  });

  it('says so when the server command does not exist', async () => {
    const mark = fake.messages.length;
    fake.setSetting('codellama.server.path', '/nonexistent/bin/codellama-ls');
    await until('the error state', () => status().text === '$(error) Code Llama');
    assert.match(status().tooltip, /was not found; install codellama-ls or set codellama.server.path/);
    assert.match(status().tooltip, /remote window/);
    assert.ok(fake.messages.some((m) => m.includes('/nonexistent/bin/codellama-ls')), fake.messages.join('\n'));
    const notifications = fake.messages.slice(mark).filter((m) => m.startsWith('error: '));
    assert.equal(notifications.length, 1, `one failure, one notification:\n${notifications.join('\n')}`);
  });
});
