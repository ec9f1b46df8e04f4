// SEI as the native SDK writes and reads it: the same bytes for the same message (the vector is pinned in
// crates/zego-rtp/src/sei.rs too), placement before the first slice, and the outbox's checks and limits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { SeiOutbox, insertBeforeFirstSlice, seiAppData, seiMessages, seiNalUnit, SEI_TYPE_USER_UNREGISTER, SEI_TYPE_ZEGO_DEFINED } from '../sei.js';

const KEYFRAME = Uint8Array.from([0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x84]);

test('a message is written as the native SDK writes it', () => {
  assert.deepEqual([...seiNalUnit(243, Uint8Array.from([0, 0, 1]))], [0, 0, 0, 1, 6, 243, 3, 0, 0, 3, 1, 0x80]);
  const long = new Uint8Array(600).fill(7);
  assert.deepEqual([...seiNalUnit(243, long).subarray(0, 9)], [0, 0, 0, 1, 6, 243, 0xff, 0xff, 90]);
});

test('data goes in before the first slice and comes back unchanged', () => {
  for (const data of [Uint8Array.from([1, 2, 3]), new Uint8Array(4096).map((_, i) => i % 4), new Uint8Array(300)]) {
    const au = insertBeforeFirstSlice(KEYFRAME, seiNalUnit(243, data));
    assert.deepEqual(seiMessages(au), [{ payloadType: 243, data }]);
    assert.deepEqual([...au.subarray(au.length - 6)], [0, 0, 1, 0x65, 0x88, 0x84], 'the slice stays last');
    assert.deepEqual([...au.subarray(0, 16)], [...KEYFRAME.subarray(0, 16)], 'the parameter sets stay first');
  }
});

test('app data is ZEGO messages and unregistered ones with their UUID', () => {
  const uuid = Uint8Array.from({ length: 17 }, (_, i) => i);
  const units = [seiNalUnit(5, uuid), seiNalUnit(6, Uint8Array.from([0x84])), seiNalUnit(5, Uint8Array.from([1])), seiNalUnit(243, Uint8Array.from([9]))];
  const all = new Uint8Array(units.reduce((n, u) => n + u.length, 0));
  units.reduce((at, u) => (all.set(u, at), at + u.length), 0);
  assert.deepEqual(seiAppData(insertBeforeFirstSlice(KEYFRAME, all)), [uuid, Uint8Array.from([9])]);
  assert.deepEqual(seiAppData(KEYFRAME), []);
});

test('malformed units give what they hold', () => {
  assert.deepEqual(seiMessages(Uint8Array.from([0, 0, 1, 6, 243, 50, 1, 2])), []);
  assert.deepEqual(seiMessages(Uint8Array.from([0, 0, 1, 6, 0xff])), []);
  assert.deepEqual(seiMessages(Uint8Array.from([0, 0, 1])), []);
  const au = insertBeforeFirstSlice(KEYFRAME, seiNalUnit(243, new Uint8Array(700).fill(9)));
  for (let end = 0; end < au.length; end++) seiMessages(au.subarray(0, end));
});

test('the outbox checks like the native SDK and allows 30 a second', () => {
  const o = new SeiOutbox();
  assert.equal(o.push(new Uint8Array(0), SEI_TYPE_ZEGO_DEFINED, 0), E.PUBLISHER_SEI_DATA_NULL);
  assert.equal(o.push('text', SEI_TYPE_ZEGO_DEFINED, 0), E.PUBLISHER_SEI_DATA_NULL);
  assert.equal(o.push(new Uint8Array(4097), SEI_TYPE_ZEGO_DEFINED, 0), E.PUBLISHER_SEI_DATA_TOO_LONG);
  assert.equal(o.push(new Uint8Array(15), SEI_TYPE_USER_UNREGISTER, 0), E.COMMON_INVALID_PARAMETER);
  assert.equal(o.take(), null);
  for (let i = 0; i < 30; i++) assert.equal(o.push(Uint8Array.from([i]), SEI_TYPE_ZEGO_DEFINED, i * 10), 0);
  assert.equal(o.push(Uint8Array.from([1]), SEI_TYPE_ZEGO_DEFINED, 999), E.PUBLISHER_SEI_TOO_FREQUENT);
  assert.equal(o.push(Uint8Array.from([1]), SEI_TYPE_ZEGO_DEFINED, 1000), 0);
  const read = seiMessages(o.take());
  assert.equal(read.length, 30, 'the oldest gives way beyond 30 waiting');
  assert.deepEqual(read[0].data, Uint8Array.from([1]));
  assert.equal(o.take(), null);
});
