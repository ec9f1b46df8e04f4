//! Login with app_sign: the app_sign itself never goes on the wire. The client proves it holds it with an
//! HMAC-SHA256 over the login's identity, a timestamp and a random nonce; the server recomputes it with its
//! copy and accepts timestamps within [`crate::limits::SIGNATURE_MAX_SKEW`] of its clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(
    app_sign: &[u8; 32],
    app_id: u32,
    user_id: &str,
    room_id: &str,
    timestamp_ms: u64,
    nonce: &str,
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(app_sign).expect("HMAC takes any key length");
    // Fields are joined with NUL, which none of them may contain, so no two logins share an input.
    for part in [
        app_id.to_string().as_bytes(),
        user_id.as_bytes(),
        room_id.as_bytes(),
        timestamp_ms.to_string().as_bytes(),
        nonce.as_bytes(),
    ] {
        mac.update(part);
        mac.update(&[0]);
    }
    mac
}

/// Hex HMAC-SHA256 of the login fields, keyed with the 32 app_sign bytes.
pub fn sign(
    app_sign: &[u8; 32],
    app_id: u32,
    user_id: &str,
    room_id: &str,
    timestamp_ms: u64,
    nonce: &str,
) -> String {
    hex::encode(
        mac(app_sign, app_id, user_id, room_id, timestamp_ms, nonce)
            .finalize()
            .into_bytes(),
    )
}

/// Constant-time check of a signature made by [`sign`].
pub fn verify(
    app_sign: &[u8; 32],
    app_id: u32,
    user_id: &str,
    room_id: &str,
    timestamp_ms: u64,
    nonce: &str,
    signature_hex: &str,
) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    mac(app_sign, app_id, user_id, room_id, timestamp_ms, nonce)
        .verify_slice(&signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let key = [7u8; 32];
        let sig = sign(&key, 1, "u", "r", 1000, "n");
        assert!(verify(&key, 1, "u", "r", 1000, "n", &sig));
        assert!(!verify(&key, 1, "u", "r", 1001, "n", &sig));
        assert!(!verify(&key, 2, "u", "r", 1000, "n", &sig));
        assert!(!verify(&[8u8; 32], 1, "u", "r", 1000, "n", &sig));
        assert!(!verify(&key, 1, "u", "r", 1000, "n", "not hex"));
    }
}
