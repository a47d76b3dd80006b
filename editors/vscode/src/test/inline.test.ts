import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { insertTextOf, isStale, keepItems, shouldRequest } from '../inline';

const fresh = { requestedVersion: 3, currentVersion: 3, cancelled: false };

describe('inline suggestions', () => {
  it('asks the server only when suggestions are on and can be shown', () => {
    assert.equal(shouldRequest({ enabled: true }), true);
    assert.equal(shouldRequest({ enabled: true, inlineSuggestEnabled: true }), true);
    assert.equal(shouldRequest({ enabled: false }), false);
    assert.equal(shouldRequest({ enabled: true, inlineSuggestEnabled: false }), false);
  });

  it('keeps the server items of a list or an array', () => {
    const item = { insertText: 'a + b' };
    assert.deepEqual(keepItems({ items: [item] }, fresh), [item]);
    assert.deepEqual(keepItems([item], fresh), [item]);
  });

  it('drops answers for an older document version or a cancelled request', () => {
    const answer = { items: [{ insertText: 'a + b' }] };
    assert.equal(isStale({ ...fresh, currentVersion: 4 }), true);
    assert.deepEqual(keepItems(answer, { ...fresh, currentVersion: 4 }), []);
    assert.deepEqual(keepItems(answer, { ...fresh, cancelled: true }), []);
  });

  it('shows nothing for an empty answer', () => {
    assert.deepEqual(keepItems(null, fresh), []);
    assert.deepEqual(keepItems(undefined, fresh), []);
    assert.deepEqual(keepItems({ items: [{ insertText: '' }, { insertText: { value: '' } }] }, fresh), []);
  });

  it('reads snippet insert texts', () => {
    assert.equal(insertTextOf({ insertText: { value: 'x$0' } }), 'x$0');
  });
});
