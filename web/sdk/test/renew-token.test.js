// What the app hears of a renewToken the server does not accept: `debugError(errorCode, 'renewToken', info)`,
// as the native SDK's debug_error with func_name "renew_token"; nothing for one that succeeds, nor for one lost
// with the connection (the resuming login carries the new token), nor after logging out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode as E } from '../codes.js';
import { renewalRefusal } from '../core.js';
import { fakeToken, Harness, ROOM } from './support.js';

function renew(h) {
  h.take();
  assert.equal(h.run((core, now) => core.renewToken(now, fakeToken())), 0);
  return h.lastSent('renew_token');
}

for (const code of [E.ROOM_TOKEN_USER_ID_ERROR, E.ROOM_TOKEN_EXPIRED, E.ROOM_RENEWED_TOKEN_NO_PUBLISH_PRIVILEGE]) {
  test(`a renewal refused with ${code} is reported as debugError with the code; the room stays as it was`, () => {
    const h = new Harness();
    h.login();
    const req = renew(h);
    h.receive({ type: 'reply', req_id: req.req_id, code, message: 'refused by the server' });
    assert.deepEqual(h.events(h.take()), [['debugError', code, 'renewToken', 'refused by the server']]);
    assert.equal(h.core.room.up, true);
  });
}

test('after a refusal the next login carries the old token again, which the server still holds', () => {
  const h = new Harness();
  h.login();
  const req = renew(h);
  h.reply(req, E.ROOM_TOKEN_USER_ID_ERROR);
  const login = h.reconnect();
  assert.deepEqual(login.credentials, { kind: 'token', token: 'token-1' });
});

test('a refusal without a message carries the code\'s own message', () => {
  const h = new Harness();
  h.login();
  const req = renew(h);
  h.reply(req, E.ROOM_TOKEN_APP_ID_ERROR);
  const [[name, code, func, info]] = h.events(h.take());
  assert.deepEqual([name, code, func], ['debugError', E.ROOM_TOKEN_APP_ID_ERROR, 'renewToken']);
  assert.match(info, /app_id/);
});

test('an accepted renewal says nothing and keeps the new expiry', () => {
  const h = new Harness();
  h.login({ token_expire_time: 100 });
  const req = renew(h);
  h.reply(req, 0, { kind: 'renew_token', token_expire_time: 200 });
  assert.deepEqual(h.events(h.take()), []);
  assert.equal(h.core.room.tokenExpireTime, 200);
});

test('no reply from the connected server: debugError 1002052 when the request times out', () => {
  const h = new Harness();
  h.login();
  renew(h);
  const timer = [...h.timers().keys()].find((name) => /:req\d+$/.test(name));
  assert.ok(timer, 'the request has a timer');
  h.fire(timer.slice(timer.indexOf(':')));
  const errors = h.events(h.take(), 'debugError');
  assert.equal(errors.length, 1);
  assert.deepEqual(errors[0].slice(0, 3), ['debugError', E.ROOM_DISCONNECTED, 'renewToken']);
});

test('a renewal lost with the connection says nothing; the resuming login carries the new token', () => {
  const h = new Harness();
  h.login();
  renew(h);
  const login = h.reconnect();
  assert.equal(login.credentials.kind, 'token');
  assert.deepEqual(h.events(h.take(), 'debugError'), []);
});

test('nothing about a renewal after logoutRoom', () => {
  const h = new Harness();
  h.login();
  const req = renew(h);
  h.run((core, now) => core.logoutRoom(now, ROOM));
  h.reply(req, E.ROOM_TOKEN_EXPIRED);
  assert.deepEqual(h.events(h.take(), 'debugError'), []);
});

test('renewalRefusal: the code and message of a refusal, 1002052 for a timeout while connected, else null', () => {
  assert.deepEqual(renewalRefusal({ code: E.ROOM_TOKEN_EXPIRED, message: 'expired' }, true), { code: E.ROOM_TOKEN_EXPIRED, info: 'expired' });
  assert.equal(renewalRefusal({ code: 0, message: '' }, true), null);
  assert.equal(renewalRefusal({ failure: 'lost' }, true), null);
  assert.equal(renewalRefusal({ failure: 'timeout' }, false), null);
  assert.equal(renewalRefusal({ failure: 'timeout' }, true).code, E.ROOM_DISCONNECTED);
});
