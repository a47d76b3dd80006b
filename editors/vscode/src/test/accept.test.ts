import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { advanced, Change, partialAccept, partialAcceptParams, Shown, shownItems } from '../accept';

const shown: Shown = {
  uri: 'file:///a.py',
  version: 7,
  line: 3,
  character: 11,
  items: [
    { id: '4.0', text: 'total(values)\n    return total' },
    { id: '4.1', text: 'count(values)' },
  ],
};

function insert(text: string, over: Partial<Change> = {}): Change {
  return { uri: 'file:///a.py', version: 8, line: 3, character: 11, rangeLength: 0, text, ...over };
}

describe('acceptance reports', () => {
  it('reads the server ids from the items commands', () => {
    const items = [
      { insertText: 'total(x)', command: { command: 'codellama.accepted', arguments: ['2.0', 'full', 8] } },
      { insertText: { value: 'count(x)' }, command: { command: 'codellama.accepted', arguments: ['2.1', 'full', 8] } },
      { insertText: 'other', command: { command: 'someone.else', arguments: ['x'] } },
      { insertText: 'none' },
    ];
    assert.deepEqual(shownItems(items), [
      { id: '2.0', text: 'total(x)' },
      { id: '2.1', text: 'count(x)' },
    ]);
  });

  it('takes a word of a shown suggestion inserted at once for a partial accept', () => {
    assert.deepEqual(partialAccept(shown, [insert('total')]), { id: '4.0', length: 5 });
    assert.deepEqual(partialAccept(shown, [insert('count(')]), { id: '4.1', length: 6 });
    assert.deepEqual(partialAccept(shown, [insert('total(values)\n')]), { id: '4.0', length: 14 });
    assert.deepEqual(partialAcceptParams({ id: '4.1', length: 6 }), {
      command: 'codellama.accepted',
      arguments: ['4.1', 'partial', 6],
    });
  });

  it('does not take typing, a whole accept or other edits for one', () => {
    assert.equal(partialAccept(shown, [insert('t')]), undefined); // typing: one character per change
    assert.equal(partialAccept(shown, [insert('count(values)')]), undefined); // all of it: the command reports that
    assert.equal(partialAccept(shown, [insert('tot', { character: 12 })]), undefined); // elsewhere
    assert.equal(partialAccept(shown, [insert('tot', { uri: 'file:///b.py' })]), undefined);
    assert.equal(partialAccept(shown, [insert('tot', { version: 9 })]), undefined); // after another change
    assert.equal(partialAccept(shown, [insert('tot', { rangeLength: 2 })]), undefined); // a replacement
    assert.equal(partialAccept(shown, [insert('tot'), insert('al')]), undefined); // several changes at once
    assert.equal(partialAccept(shown, [insert('xyz')]), undefined);
    assert.equal(partialAccept(undefined, [insert('total')]), undefined);
  });

  it('follows the rest of the suggestions after a partial accept', () => {
    const after = advanced(shown, insert('total(values)\n'));
    assert.deepEqual(after, {
      uri: 'file:///a.py',
      version: 8,
      line: 4,
      character: 0,
      items: [{ id: '4.0', text: '    return total' }],
    });
    assert.deepEqual(partialAccept(after, [insert('    return', { version: 9, line: 4, character: 0 })]), {
      id: '4.0',
      length: 10,
    });
    assert.equal(advanced(shown, insert('to')).character, 13);
  });
});
