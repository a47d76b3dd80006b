import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Place, WarmParams, Warmer } from '../warm';

/** Timers the test advances by hand. */
class Clock {
  now = 0;
  private pending: { at: number; fn: () => void; id: number }[] = [];
  private next = 0;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.next;
    this.pending.push({ at: this.now + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown): void => {
    this.pending = this.pending.filter((t) => t.id !== id);
  };
  advance(ms: number): void {
    this.now += ms;
    for (const t of this.pending.filter((t) => t.at <= this.now)) {
      this.clearTimeout(t.id);
      t.fn();
    }
  }
}

function place(line: number, character: number, over: Partial<Place> = {}): Place {
  return { uri: 'file:///a.py', version: 1, line, character, ...over };
}

function setup(): { sent: WarmParams[]; clock: Clock; warmer: Warmer } {
  const sent: WarmParams[] = [];
  const clock = new Clock();
  return { sent, clock, warmer: new Warmer((p) => sent.push(p), 300, clock) };
}

describe('codellama/warm', () => {
  it('is sent once the cursor rests, for the place it rests at', () => {
    const { sent, clock, warmer } = setup();
    warmer.moved(place(1, 2));
    clock.advance(100);
    warmer.moved(place(1, 3)); // still moving: the first place is never sent
    clock.advance(299);
    assert.deepEqual(sent, []);
    clock.advance(1);
    assert.deepEqual(sent, [{ textDocument: { uri: 'file:///a.py' }, position: { line: 1, character: 3 } }]);
  });

  it('is sent at once for a newly active editor, again when it comes back', () => {
    const { sent, warmer } = setup();
    warmer.entered(place(4, 0));
    warmer.entered(place(0, 0, { uri: 'file:///b.py' }));
    warmer.entered(place(4, 0));
    assert.deepEqual(
      sent.map((p) => [p.textDocument.uri, p.position.line]),
      [['file:///a.py', 4], ['file:///b.py', 0], ['file:///a.py', 4]],
    );
  });

  it('is not repeated for the same place of the same text, and is for an edited text', () => {
    const { sent, clock, warmer } = setup();
    warmer.moved(place(2, 5));
    clock.advance(300);
    warmer.moved(place(2, 5));
    clock.advance(300);
    assert.equal(sent.length, 1);
    warmer.moved(place(2, 5, { version: 2 }));
    clock.advance(300);
    assert.equal(sent.length, 2);
  });

  it('sends nothing after cancel or dispose', () => {
    const { sent, clock, warmer } = setup();
    warmer.moved(place(1, 1));
    warmer.cancel();
    warmer.moved(place(1, 2));
    warmer.dispose();
    clock.advance(1000);
    assert.deepEqual(sent, []);
  });
});
