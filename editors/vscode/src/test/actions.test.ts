import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { editRequest, explainRequest, explanationDocument, isActionProgress, markdownOf } from '../actions';

const uri = 'file:///work/geometry.py';
const range = { start: { line: 3, character: 0 }, end: { line: 4, character: 35 } };

describe('Code Llama - Instruct commands', () => {
  it('sends the selection and the trimmed instruction to codellama.edit', () => {
    assert.deepEqual(editRequest(uri, range, '  use math.hypot \n'), {
      command: 'codellama.edit',
      arguments: [{ uri, range, instruction: 'use math.hypot' }],
    });
  });

  it('sends nothing when the input box was dismissed or left blank', () => {
    assert.equal(editRequest(uri, range, undefined), undefined);
    assert.equal(editRequest(uri, range, '   '), undefined);
  });

  it('asks codellama.explain about the selection', () => {
    assert.deepEqual(explainRequest(uri, range), { command: 'codellama.explain', arguments: [{ uri, range }] });
  });

  it('reads the markdown of an explanation, and nothing else', () => {
    assert.equal(markdownOf({ markdown: '`hyp` returns the hypotenuse.' }), '`hyp` returns the hypotenuse.');
    for (const answer of [null, undefined, {}, { markdown: 3 }, { markdown: '  ' }, 'text']) {
      assert.equal(markdownOf(answer), undefined, JSON.stringify(answer));
    }
  });

  it('heads the preview with what was explained', () => {
    assert.equal(explanationDocument('It adds.\n\n', 'calc.py (selection)'), '# Code Llama: calc.py (selection)\n\nIt adds.\n');
  });

  it("tells an action's progress from model loading", () => {
    assert.equal(isActionProgress('codellama-ls/action/6f1c'), true);
    assert.equal(isActionProgress('codellama-ls/load/6f1c'), false);
    assert.equal(isActionProgress(7), false);
  });
});
