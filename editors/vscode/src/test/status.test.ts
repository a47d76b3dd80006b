import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { acceptanceLine, isStatus, pollDelayMs, StatusModel } from '../status';

function running(enabled = true): StatusModel {
  const model = new StatusModel(enabled);
  model.setPhase('running');
  return model;
}

describe('status bar', () => {
  it('spins while the client starts', () => {
    const model = new StatusModel(true);
    assert.match(model.view().text, /loading~spin/);
    assert.equal(model.needsPolling(), false);
  });

  it('shows load progress from $/progress', () => {
    const model = running();
    model.setStatus({ state: 'loading', model: 'codellama/CodeLlama-7b-hf' });
    model.setProgress({ kind: 'begin', title: 'codellama-ls', message: 'Loading tokenizer', percentage: 5 });
    model.setProgress({ kind: 'report', message: 'Loading model weights', percentage: 20 });
    const view = model.view();
    assert.equal(view.text, '$(loading~spin) Code Llama 20%');
    assert.match(view.tooltip, /codellama\/CodeLlama-7b-hf: Loading model weights/);
    assert.equal(view.severity, 'normal');
    assert.equal(model.needsPolling(), true);
  });

  it('a progress begin before any status answer already means loading', () => {
    const model = running();
    model.setProgress({ kind: 'begin', message: 'Loading tokenizer', percentage: 5 });
    assert.equal(model.state, 'loading');
    assert.match(model.view().text, /5%/);
  });

  it('is ready once the server says so, and polling stops', () => {
    const model = running();
    model.setProgress({ kind: 'begin', percentage: 5 });
    model.setProgress({ kind: 'end', message: 'Model ready' });
    assert.equal(model.needsPolling(), true, 'progress end alone does not prove the load succeeded');
    model.setStatus({ state: 'ready', model: '/models/tiny', engine: 'local', enabled: true });
    const view = model.view();
    assert.equal(view.text, '$(check) Code Llama');
    assert.match(view.tooltip, /Ready: \/models\/tiny/);
    assert.equal(model.needsPolling(), false);
  });

  it('shows the remote engine', () => {
    const model = running();
    model.setStatus({ state: 'ready', model: 'codellama', engine: 'tgi' });
    assert.match(model.view().tooltip, /via tgi/);
  });

  it('shows the server error when loading failed', () => {
    const model = running();
    model.setStatus({ state: 'failed', error: "Model 'x' not found", model: 'x' });
    const view = model.view();
    assert.equal(view.text, '$(error) Code Llama');
    assert.equal(view.severity, 'error');
    assert.match(view.tooltip, /Model 'x' not found/);
    assert.match(view.tooltip, /Restart Server/);
    assert.equal(model.needsPolling(), false);
  });

  it('says when suggestions are off', () => {
    const model = running(false);
    model.setStatus({ state: 'ready', model: 'm' });
    assert.equal(model.view().text, '$(circle-slash) Code Llama');
    assert.equal(model.view().severity, 'warning');
    model.setEnabled(true);
    assert.equal(model.view().text, '$(check) Code Llama');
  });

  it('reports a server that did not start, with the reason', () => {
    const model = running();
    model.setStatus({ state: 'ready' });
    model.setPhase('stopped', "'codellama-ls' was not found");
    const view = model.view();
    assert.equal(view.severity, 'error');
    assert.match(view.tooltip, /was not found/);
    assert.equal(model.needsPolling(), false);
    assert.equal(model.state, 'stopped');
  });

  it('a restart forgets the old server state', () => {
    const model = running();
    model.setStatus({ state: 'failed', error: 'boom' });
    model.setPhase('starting');
    model.setPhase('running');
    assert.equal(model.needsPolling(), true);
    assert.doesNotMatch(model.view().tooltip, /boom/);
  });

  it('ignores answers that are not a status', () => {
    const model = running();
    model.setStatus({ state: 'ready' });
    model.setStatus(null);
    model.setStatus({ state: 'exploded' });
    model.setStatus('ready');
    assert.equal(model.state, 'ready');
    assert.equal(isStatus({ state: 'idle' }), true);
  });
});

describe('acceptance', () => {
  it('adds the acceptance counts of all sources to the ready tooltip', () => {
    const model = running();
    const counts = (shown: number, accepted: number, partlyAccepted: number) => ({ shown, accepted, partlyAccepted });
    model.setStatus({ state: 'ready', acceptance: { bySource: { model: counts(8, 2, 1), typed: counts(2, 1, 0) } } });
    assert.match(model.view().tooltip, /\nAccepted 3 of 10 suggestions \(30%\), 1 in part\.$/);
    model.setStatus({ state: 'ready', acceptance: { bySource: {} } });
    assert.doesNotMatch(model.view().tooltip, /Accepted/); // nothing shown yet: no line
    assert.equal(acceptanceLine(undefined), '');
  });
});

describe('polling', () => {
  it('backs off to every 2 s', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 10].map(pollDelayMs), [250, 500, 1000, 2000, 2000, 2000]);
  });
});
