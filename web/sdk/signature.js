// The app_sign login proof: hex HMAC-SHA256 keyed with the 32 app_sign bytes over
// app_id ‖ 0 ‖ user_id ‖ 0 ‖ room_id ‖ 0 ‖ timestamp_ms ‖ 0 ‖ nonce ‖ 0, computed with WebCrypto.

const encoder = new TextEncoder();

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A fresh nonce: 16 random bytes in hex. */
export function newNonce() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** Hex HMAC-SHA256 of the login fields (see the protocol's Credentials). */
export async function sign(appSignHex, appID, userID, roomID, timestampMs, nonce) {
  const key = await crypto.subtle.importKey('raw', hexToBytes(appSignHex), { name: 'HMAC', hash: 'SHA-256' },
    false, ['sign']);
  const parts = [String(appID), userID, roomID, String(timestampMs), nonce].map((p) => encoder.encode(p));
  const message = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const part of parts) {
    message.set(part, at);
    at += part.length + 1; // followed by a NUL
  }
  return bytesToHex(new Uint8Array(await crypto.subtle.sign('HMAC', key, message)));
}

/** The `credentials` of a login made with the app_sign: signed now, with a fresh nonce. */
export async function appSignCredentials(appSignHex, appID, userID, roomID) {
  const timestampMs = Date.now();
  const nonce = newNonce();
  const signature = await sign(appSignHex, appID, userID, roomID, timestampMs, nonce);
  return { kind: 'app_sign', timestamp_ms: timestampMs, nonce, signature };
}
