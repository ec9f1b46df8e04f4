//! Login proofs: the app_sign signature and Token04, checked against an app's keys.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use zego_protocol::error::{self, ErrorCode};
use zego_protocol::message::Credentials;
use zego_protocol::token04::{self, Claims};
use zego_protocol::{limits, signature, validate};

use crate::clock::Now;
use crate::config::AppConfig;

/// Signature nonces are short random strings; longer ones are refused before any work is done.
const NONCE_MAX: usize = 128;
/// Signatures remembered per app to refuse replays; a flood of logins beyond this is refused as rate limited.
const REPLAY_MEMORY_MAX: usize = 100_000;

/// An app's keys, parsed once.
#[derive(Debug, Clone)]
pub struct AppKeys {
    pub app_id: u32,
    app_sign: [u8; 32],
    server_secret: String,
}

impl AppKeys {
    pub fn new(config: &AppConfig) -> Result<Self, ErrorCode> {
        Ok(AppKeys {
            app_id: config.app_id,
            app_sign: validate::app_sign(&config.app_sign)?,
            server_secret: config.server_secret.clone(),
        })
    }

    #[cfg(test)]
    pub fn server_secret(&self) -> &str {
        &self.server_secret
    }
}

/// How a session proved itself.
#[derive(Debug, Clone)]
pub enum Grant {
    AppSign,
    Token(TokenGrant),
}

/// A verified token and what follows from it.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub claims: Claims,
    /// Unix seconds.
    pub expire: i64,
}

impl Grant {
    pub fn token_expire(&self) -> Option<u64> {
        match self {
            Grant::AppSign => None,
            Grant::Token(t) => Some(t.expire.max(0) as u64),
        }
    }

    /// Publishing is refused with 1003072 when a token does not allow this stream in this room.
    pub fn may_publish(&self, room_id: &str, stream_id: &str) -> Result<(), ErrorCode> {
        match self {
            Grant::AppSign => Ok(()),
            Grant::Token(t) => token04::may_publish(&t.claims, room_id, stream_id),
        }
    }
}

/// Checks a token for this user and room: format, keys, expiry, then the login privilege.
pub fn check_token(
    keys: &AppKeys,
    token: &str,
    user_id: &str,
    room_id: &str,
    now: Now,
) -> Result<TokenGrant, ErrorCode> {
    if token.is_empty() {
        return Err(error::ROOM_NO_TOKEN_NO_APP_SIGN);
    }
    validate::token(token)?;
    let claims = token04::verify(
        &keys.server_secret,
        token,
        keys.app_id,
        user_id,
        now.unix_secs(),
    )?;
    token04::may_login(&claims, room_id)?;
    Ok(TokenGrant {
        expire: claims.expire,
        claims,
    })
}

/// Remembers recent signatures so a captured login cannot be replayed within the accepted clock skew.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl ReplayGuard {
    fn forget_expired(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            let (_, signature) = self.order.pop_front().expect("front exists");
            self.seen.remove(&signature);
        }
    }

    /// Records a signature; refused if it was seen within the window, or if too many are remembered.
    fn first_use(&mut self, signature: &str, now: Instant) -> Result<(), ErrorCode> {
        self.forget_expired(now);
        if self.seen.contains_key(signature) {
            return Err(error::ROOM_AUTHENTICATION_FAILED);
        }
        if self.seen.len() >= REPLAY_MEMORY_MAX {
            return Err(error::ROOM_RATE_LIMITED_LOGIN);
        }
        // A signature stays acceptable for SIGNATURE_MAX_SKEW on either side of its timestamp.
        let expiry = now + 2 * limits::SIGNATURE_MAX_SKEW;
        self.seen.insert(signature.to_owned(), expiry);
        self.order.push_back((expiry, signature.to_owned()));
        Ok(())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// Checks login credentials for `user_id` entering `room_id`.
pub fn check_login(
    keys: &AppKeys,
    credentials: &Credentials,
    user_id: &str,
    room_id: &str,
    now: Now,
    replay: &mut ReplayGuard,
) -> Result<Grant, ErrorCode> {
    match credentials {
        Credentials::Token { token } => {
            check_token(keys, token, user_id, room_id, now).map(Grant::Token)
        }
        Credentials::AppSign {
            timestamp_ms,
            nonce,
            signature: sig,
        } => {
            if sig.is_empty() {
                return Err(error::ROOM_NO_TOKEN_NO_APP_SIGN);
            }
            if nonce.is_empty()
                || nonce.len() > NONCE_MAX
                || sig.len() > 2 * limits::APP_SIGN_HEX_LEN
            {
                return Err(error::ROOM_AUTHENTICATION_FAILED);
            }
            let skew = Duration::from_millis(timestamp_ms.abs_diff(now.unix_ms));
            if skew > limits::SIGNATURE_MAX_SKEW {
                return Err(error::ROOM_AUTHENTICATION_FAILED);
            }
            if !signature::verify(
                &keys.app_sign,
                keys.app_id,
                user_id,
                room_id,
                *timestamp_ms,
                nonce,
                sig,
            ) {
                return Err(error::ENGINE_APP_SIGN_INCORRECT);
            }
            replay.first_use(&sig.to_ascii_lowercase(), now.mono)?;
            Ok(Grant::AppSign)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEV_APP_ID, DEV_APP_SIGN};
    use zego_protocol::token04::{Mode, Privilege};

    fn keys() -> AppKeys {
        AppKeys::new(&AppConfig::dev()).unwrap()
    }

    fn app_sign(ts: u64, nonce: &str) -> Credentials {
        let key = validate::app_sign(DEV_APP_SIGN).unwrap();
        Credentials::AppSign {
            timestamp_ms: ts,
            nonce: nonce.into(),
            signature: signature::sign(&key, DEV_APP_ID, "u1", "r1", ts, nonce),
        }
    }

    #[test]
    fn app_sign_is_accepted_once_and_within_the_skew() {
        let now = Now::system();
        let mut replay = ReplayGuard::default();
        let creds = app_sign(now.unix_ms, "n1");
        assert!(matches!(
            check_login(&keys(), &creds, "u1", "r1", now, &mut replay),
            Ok(Grant::AppSign)
        ));
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &mut replay).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED,
            "a replayed signature is refused"
        );
        let stale = app_sign(now.unix_ms - 11 * 60 * 1000, "n2");
        assert_eq!(
            check_login(&keys(), &stale, "u1", "r1", now, &mut replay).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED
        );
        // Signed for another room: the signature does not match.
        assert_eq!(
            check_login(
                &keys(),
                &app_sign(now.unix_ms, "n3"),
                "u1",
                "r2",
                now,
                &mut replay
            )
            .unwrap_err(),
            error::ENGINE_APP_SIGN_INCORRECT
        );
    }

    #[test]
    fn replay_memory_forgets_after_the_window() {
        let now = Now::system();
        let mut replay = ReplayGuard::default();
        replay.first_use("abc", now.mono).unwrap();
        assert!(replay.first_use("abc", now.mono).is_err());
        let later = now.mono + 2 * limits::SIGNATURE_MAX_SKEW;
        replay.first_use("abc", later).unwrap();
        assert_eq!(replay.len(), 1);
    }

    #[test]
    fn empty_credentials_are_neither_given() {
        let now = Now::system();
        let mut replay = ReplayGuard::default();
        let creds = Credentials::Token {
            token: String::new(),
        };
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &mut replay).unwrap_err(),
            error::ROOM_NO_TOKEN_NO_APP_SIGN
        );
        let creds = Credentials::AppSign {
            timestamp_ms: now.unix_ms,
            nonce: "n".into(),
            signature: String::new(),
        };
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &mut replay).unwrap_err(),
            error::ROOM_NO_TOKEN_NO_APP_SIGN
        );
    }

    #[test]
    fn token_checks_room_privilege() {
        let now = Now::system();
        let claims = Claims {
            app_id: DEV_APP_ID,
            user_id: "u1".into(),
            nonce: 1,
            ctime: now.unix_secs(),
            expire: now.unix_secs() + 60,
            payload: Privilege {
                room_id: "r1".into(),
                login_room: true,
                publish: false,
                stream_id_list: None,
            }
            .to_payload(),
        };
        let token = token04::generate(keys().server_secret(), &claims, Mode::Gcm, None).unwrap();
        let grant = check_token(&keys(), &token, "u1", "r1", now).unwrap();
        assert_eq!(grant.expire, now.unix_secs() + 60);
        assert_eq!(
            check_token(&keys(), &token, "u1", "r2", now).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED
        );
        assert_eq!(
            check_token(&keys(), &token, "u2", "r1", now).unwrap_err(),
            error::ROOM_TOKEN_USER_ID_ERROR
        );
        assert_eq!(
            Grant::Token(grant).may_publish("r1", "s1").unwrap_err(),
            error::PUBLISHER_AUTH_FAILED
        );
    }
}
