import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
  configurationChange,
  didChangeConfigurationParams,
  findExecutable,
  Inspected,
  Manifest,
  manifestDefaults,
  needsRestart,
  notFoundHint,
  serverCommand,
  serverKeys,
  userSettings,
  userValue,
} from '../settings';

// out/test/ → the package root
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as Manifest;

function inspector(layers: Record<string, Inspected>): (key: string) => Inspected | undefined {
  return (key) => layers[key] ?? { defaultValue: 'whatever' };
}

describe('serverKeys', () => {
  it('lists the contributed server settings and leaves out how the server is started', () => {
    const keys = serverKeys(manifest);
    const expected = ['model', 'quantization', 'maxNewTokens', 'debounceMs', 'fimFormat', 'engine', 'url', 'enable'];
    for (const key of [...expected, 'contextTokens', 'contextExclude']) {
      assert.ok(keys.includes(key), `${key} missing from ${keys.join(', ')}`);
    }
    assert.ok(!keys.includes('server.path'));
    assert.ok(!keys.includes('server.args'));
  });

  it('every contributed setting has a description', () => {
    const properties = manifest.contributes?.configuration?.properties ?? {};
    for (const [name, property] of Object.entries(properties)) {
      assert.ok((property.description ?? property.markdownDescription ?? '').length > 10, name);
    }
  });

  it('knows the defaults, with null for optional ones', () => {
    const defaults = manifestDefaults(manifest);
    assert.equal(defaults.maxNewTokens, 128);
    assert.equal(defaults.fimFormat, 'spm');
    assert.equal(defaults.url, null);
    assert.equal(defaults.contextTokens, 512);
    assert.deepEqual(defaults.contextExclude, []);
  });
});

describe('initializationOptions', () => {
  it('sends nothing when the user set nothing, so the server keeps its env/CLI values', () => {
    assert.deepEqual(userSettings(serverKeys(manifest), inspector({})), {});
  });

  it('sends only what the user set, with the most specific scope winning', () => {
    const options = userSettings(
      ['model', 'maxNewTokens', 'debounceMs', 'enable'],
      inspector({
        model: { defaultValue: 'codellama/CodeLlama-7b-hf', globalValue: '/models/tiny' },
        maxNewTokens: { defaultValue: 128, globalValue: 64, workspaceValue: 32 },
        debounceMs: { defaultValue: 150 },
        enable: { defaultValue: true, globalValue: false },
      }),
    );
    assert.deepEqual(options, { model: '/models/tiny', maxNewTokens: 32, enable: false });
  });

  it('treats a value equal to the default as set (the user may mean to override the environment)', () => {
    assert.equal(userValue({ defaultValue: 150, globalValue: 150 }), 150);
    assert.equal(userValue({ defaultValue: 150 }), undefined);
    assert.equal(userValue(undefined), undefined);
  });
});

describe('didChangeConfiguration', () => {
  const defaults = { maxNewTokens: 128, model: 'codellama/CodeLlama-7b-hf', enable: true };

  it('sends changed and new values only', () => {
    assert.deepEqual(
      configurationChange({ maxNewTokens: 64, model: '/m' }, { maxNewTokens: 32, model: '/m', enable: false }, defaults),
      { maxNewTokens: 32, enable: false },
    );
  });

  it('sends the default for a value the user removed', () => {
    assert.deepEqual(configurationChange({ maxNewTokens: 64 }, {}, defaults), { maxNewTokens: 128 });
  });

  it('is silent when nothing the server sees changed', () => {
    assert.equal(configurationChange({ model: '/m' }, { model: '/m' }, defaults), undefined);
    assert.equal(configurationChange({}, {}, defaults), undefined);
  });

  it('compares arrays and objects by value', () => {
    assert.equal(configurationChange({ x: [1, 2] }, { x: [1, 2] }, {}), undefined);
  });

  it('sends a changed list of globs whole, and the empty default when the user removes it', () => {
    const defaults = { contextExclude: [] };
    assert.deepEqual(configurationChange({}, { contextExclude: ['vendor/**'] }, defaults), {
      contextExclude: ['vendor/**'],
    });
    assert.deepEqual(configurationChange({ contextExclude: ['vendor/**'] }, {}, defaults), { contextExclude: [] });
  });

  it('nests the changes under the section the server looks for', () => {
    assert.deepEqual(didChangeConfigurationParams({ enable: false }), { settings: { codellama: { enable: false } } });
  });
});

describe('server command', () => {
  it('defaults to codellama-ls on PATH', () => {
    assert.deepEqual(serverCommand(undefined, undefined), { command: 'codellama-ls', args: [] });
    assert.deepEqual(serverCommand('  ', null), { command: 'codellama-ls', args: [] });
  });

  it('uses the configured path and string arguments', () => {
    assert.deepEqual(serverCommand('/venv/bin/python', ['-m', 'codellama_ls', 3]), {
      command: '/venv/bin/python',
      args: ['-m', 'codellama_ls'],
    });
  });

  it('restarts the server only when its command changes', () => {
    assert.equal(needsRestart((s) => s === 'codellama.server.args'), true);
    assert.equal(needsRestart((s) => s === 'codellama.server.path'), true);
    assert.equal(needsRestart((s) => s === 'codellama.model'), false);
  });
});

describe('finding the server command', () => {
  const files = new Set(['/venv/bin/codellama-ls', '/usr/bin/python3', 'C:\\venv\\Scripts\\codellama-ls.EXE']);
  const exists = (path: string) => files.has(path);

  it('takes a path as it is and looks a bare name up on PATH', () => {
    assert.equal(findExecutable('/venv/bin/codellama-ls', {}, exists, 'linux'), '/venv/bin/codellama-ls');
    assert.equal(findExecutable('/elsewhere/codellama-ls', { PATH: '/venv/bin' }, exists, 'linux'), undefined);
    assert.equal(findExecutable('codellama-ls', { PATH: '/usr/bin:/venv/bin/' }, exists, 'linux'), '/venv/bin/codellama-ls');
    assert.equal(findExecutable('codellama-ls', { PATH: '/usr/bin' }, exists, 'linux'), undefined);
    assert.equal(findExecutable('codellama-ls', {}, exists, 'linux'), undefined);
  });

  it('tries PATHEXT on Windows', () => {
    const env = { PATH: 'C:\\Windows;C:\\venv\\Scripts', PATHEXT: '.COM;.EXE' };
    assert.equal(findExecutable('codellama-ls', env, exists, 'win32'), 'C:\\venv\\Scripts\\codellama-ls.EXE');
  });

  it('names where a remote window reads the setting', () => {
    const hint = notFoundHint('codellama-ls');
    assert.match(hint, /'codellama-ls' was not found; install codellama-ls or set codellama.server.path/);
    assert.match(hint, /User settings/);
    assert.match(hint, /remote window/);
    assert.match(hint, /Remote settings/);
  });

  it('reads the server command from User settings in a remote window too', () => {
    // "machine" settings are read only from the remote machine's settings in a remote window
    // (code-server, Remote-SSH, WSL, Codespaces); the User settings were silently ignored.
    const properties = (manifest.contributes?.configuration?.properties ?? {}) as Record<string, { scope?: string }>;
    for (const key of ['codellama.server.path', 'codellama.server.args']) {
      assert.equal(properties[key]?.scope, 'window', key);
    }
  });
});
