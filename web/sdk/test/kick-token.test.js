// Being kicked out (same user elsewhere, by the server, token expired) and the token's life: the warning event,
// renewToken, and the renewed token used by the next login.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { fakeToken, Harness, ROOM } from './support.js';

for (const code of [E.ROOM_KICKED_OUT_SAME_USER, E.ROOM_KICKED_OUT_BY_SERVER, E.ROOM_KICKED_OUT_TOKEN_EXPIRED]) {
  test(`kicked with ${code}: KICKOUT with the code, streams end with it, no reconnect`, () => {
    const h = new Harness();
    h.login();
    h.run((core, now) => core.startPublishing(now, 'pub', {}));
    h.run((core, now) => core.startPlaying(now, 8, 'other', {}));
    h.take();
    h.receive({ type: 'kicked', room_id: ROOM, code });
    const out = h.take();
    assert.deepEqual(h.events(out).map(([name, a, b, c]) => (typeof a === 'object' ? [name, a.state, a.errorCode] : [name, b, c])), [
      ['roomStateUpdate', 'DISCONNECTED', code],
      ['roomStateChanged', 'KICKOUT', code],
      ['publisherStateUpdate', 'NO_PUBLISH', code],
      ['playerStateUpdate', 'NO_PLAY', code],
    ]);
    assert.deepEqual(h.of(out, 'settle'), [{ type: 'settle', ticket: 8, error: code }]);
    assert.deepEqual(h.of(out, 'close'), [{ type: 'close', conn: 1 }]);
    // The server closes the connection after the kick: that is not a break to recover from.
    h.closeSocket(1);
    assert.equal(h.events(h.take()).length, 0);
    assert.equal(h.timers().size, 0);
  });
}

test('tokenWillExpire is reported; renewToken sends the new token and the next login uses it', () => {
  const h = new Harness();
  h.login({ token_expire_time: 100 });
  h.receive({ type: 'token_will_expire', room_id: ROOM, remain_seconds: 30 });
  assert.deepEqual(h.events(h.take()), [['tokenWillExpire', ROOM, 30]]);
  const token = fakeToken();
  assert.equal(h.run((core, now) => core.renewToken(now, token)), 0);
  const renew = h.lastSent('renew_token');
  assert.equal(renew.token, token);
  h.reply(renew, 0, { kind: 'renew_token', token_expire_time: 200 });
  assert.equal(h.core.room.tokenExpireTime, 200);
  const login = h.reconnect();
  assert.deepEqual(login.credentials, { kind: 'token', token });
});

test('renewToken refuses what cannot be a Token04, and rooms it is not in', () => {
  const h = new Harness();
  assert.equal(h.run((core, now) => core.renewToken(now, fakeToken())), E.ROOM_NOT_LOGGED_IN_THAT_ROOM);
  h.login();
  h.take();
  assert.equal(h.run((core, now) => core.renewToken(now, '')), E.ROOM_TOKEN_FORMAT_ERROR);
  assert.equal(h.run((core, now) => core.renewToken(now, '03abcd')), E.ROOM_TOKEN_VERSION_ERROR);
  assert.equal(h.run((core, now) => core.renewToken(now, '04!!!')), E.ROOM_TOKEN_FORMAT_ERROR);
  assert.equal(h.run((core, now) => core.renewToken(now, `04${'A'.repeat(2048)}`)), E.ROOM_TOKEN_FORMAT_ERROR);
  const nonce11 = `04${Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 11, ...new Array(11).fill(1), 0, 1, 9, 1]).toString('base64')}`;
  assert.equal(h.run((core, now) => core.renewToken(now, nonce11)), E.ROOM_TOKEN_NONCE_ERROR);
  assert.equal(h.run((core, now) => core.renewToken(now, fakeToken(), 'other')), E.ROOM_NOT_LOGGED_IN_THAT_ROOM);
  assert.equal(h.sent(h.take()).length, 0);
});

test('at expiry the server kicks with 1002056 and the publisher hears it', () => {
  const h = new Harness();
  h.login({ token_expire_time: 100 });
  h.run((core, now) => core.startPublishing(now, 'pub', {}));
  h.take();
  h.receive({ type: 'token_will_expire', room_id: ROOM, remain_seconds: 30 });
  h.receive({ type: 'stream_update', room_id: ROOM, update_type: 'delete', streams: [{ user: { user_id: 'me', user_name: 'Me' }, stream_id: 'pub', extra_info: '' }], reasons: [{ stream_id: 'pub', code: 4 }] });
  h.receive({ type: 'kicked', room_id: ROOM, code: E.ROOM_KICKED_OUT_TOKEN_EXPIRED });
  const code = ([name, a, b, c]) => {
    if (name === 'tokenWillExpire') return [name, b];
    return [name, typeof a === 'object' ? a.errorCode : c];
  };
  assert.deepEqual(h.events(h.take()).map(code), [
    ['tokenWillExpire', 30],
    ['roomStateUpdate', E.ROOM_KICKED_OUT_TOKEN_EXPIRED],
    ['roomStateChanged', E.ROOM_KICKED_OUT_TOKEN_EXPIRED],
    ['publisherStateUpdate', E.ROOM_KICKED_OUT_TOKEN_EXPIRED],
  ]);
});
