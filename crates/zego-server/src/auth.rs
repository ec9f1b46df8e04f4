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
/// app_sign proofs of one user remembered at once: further logins of that user are refused as rate limited until
/// older proofs leave the window. Other users are not affected.
const PROOFS_PER_USER_MAX: usize = 100;

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

/// Checks a token for this user and room: format, keys, expiry, then the login privilege
/// ([`token04::check_login`], which `token verify` calls too).
pub fn check_token(
    keys: &AppKeys,
    token: &str,
    user_id: &str,
    room_id: &str,
    now: Now,
) -> Result<TokenGrant, ErrorCode> {
    let claims = token04::check_login(
        &keys.server_secret,
        token,
        keys.app_id,
        user_id,
        room_id,
        now.unix_secs(),
    )?;
    Ok(TokenGrant {
        expire: claims.expire,
        claims,
    })
}

/// Remembers the app_sign proofs spent, per user, for as long as each could still be accepted (its timestamp within
/// [`limits::SIGNATURE_MAX_SKEW`] of the clock), so that a captured login cannot be replayed; memory is bounded by
/// the logins of one window. Proofs minted before the server started are refused, since those spent before a
/// restart are not remembered.
#[derive(Debug)]
pub struct ReplayGuard {
    started_unix_ms: u64,
    by_user: HashMap<String, Vec<SpentProof>>,
    /// Users in the order they spent proofs, with a time by which that proof is surely forgotten, to sweep.
    sweep: VecDeque<(Instant, String)>,
}

#[derive(Debug)]
struct SpentProof {
    /// Lowercase hex.
    signature: String,
    forget_at: Instant,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::new(Now::system())
    }
}

impl ReplayGuard {
    pub fn new(started: Now) -> Self {
        ReplayGuard {
            started_unix_ms: started.unix_ms,
            by_user: HashMap::new(),
            sweep: VecDeque::new(),
        }
    }

    /// Whether a verified proof may be used now: minted since the server started, not spent, and within its
    /// user's bound. A proof from before the start gets the transient 1002071: a client signing afresh gets in
    /// once its clock has passed the start.
    fn check(
        &self,
        user_id: &str,
        signature: &str,
        timestamp_ms: u64,
        now: Now,
    ) -> Result<(), ErrorCode> {
        if timestamp_ms < self.started_unix_ms {
            return Err(error::ROOM_RATE_LIMITED_LOGIN);
        }
        let Some(proofs) = self.by_user.get(user_id) else {
            return Ok(());
        };
        let mut live = proofs.iter().filter(|p| p.forget_at > now.mono);
        if live
            .clone()
            .any(|p| p.signature.eq_ignore_ascii_case(signature))
        {
            return Err(error::ROOM_AUTHENTICATION_FAILED);
        }
        if live.nth(PROOFS_PER_USER_MAX - 1).is_some() {
            return Err(error::ROOM_RATE_LIMITED_LOGIN);
        }
        Ok(())
    }

    /// Remembers the proof of a login that succeeded (a refused login spends nothing); tokens are not remembered.
    pub fn spend(&mut self, credentials: &Credentials, user_id: &str, now: Now) {
        let Credentials::AppSign {
            timestamp_ms,
            signature,
            ..
        } = credentials
        else {
            return;
        };
        self.forget_expired(now.mono);
        let window = limits::SIGNATURE_MAX_SKEW;
        let acceptable_until_ms = timestamp_ms.saturating_add(window.as_millis() as u64);
        let forget_at =
            now.mono + Duration::from_millis(acceptable_until_ms.saturating_sub(now.unix_ms));
        let proofs = self.by_user.entry(user_id.to_owned()).or_default();
        proofs.retain(|p| p.forget_at > now.mono);
        proofs.push(SpentProof {
            signature: signature.to_ascii_lowercase(),
            forget_at,
        });
        // A proof is acceptable until at most twice the skew from now (its timestamp may be ahead of the clock).
        self.sweep
            .push_back((now.mono + 2 * window, user_id.to_owned()));
    }

    fn forget_expired(&mut self, now: Instant) {
        while let Some((at, _)) = self.sweep.front() {
            if *at > now {
                break;
            }
            let (_, user_id) = self.sweep.pop_front().expect("front exists");
            if let Some(proofs) = self.by_user.get_mut(&user_id) {
                proofs.retain(|p| p.forget_at > now);
                if proofs.is_empty() {
                    self.by_user.remove(&user_id);
                }
            }
        }
    }

    /// Proofs remembered, in all.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_user.values().map(Vec::len).sum()
    }
}

/// Checks login credentials for `user_id` entering `room_id`. An app_sign proof is only checked against `replay`:
/// once the login succeeds, the caller spends it with [`ReplayGuard::spend`].
pub fn check_login(
    keys: &AppKeys,
    credentials: &Credentials,
    user_id: &str,
    room_id: &str,
    now: Now,
    replay: &ReplayGuard,
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
            replay.check(user_id, sig, *timestamp_ms, now)?;
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
        let mut replay = ReplayGuard::new(now);
        let creds = app_sign(now.unix_ms, "n1");
        assert!(matches!(
            check_login(&keys(), &creds, "u1", "r1", now, &replay),
            Ok(Grant::AppSign)
        ));
        replay.spend(&creds, "u1", now);
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &replay).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED,
            "a replayed signature is refused"
        );
        let stale = app_sign(now.unix_ms - 11 * 60 * 1000, "n2");
        assert_eq!(
            check_login(&keys(), &stale, "u1", "r1", now, &replay).unwrap_err(),
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
                &replay
            )
            .unwrap_err(),
            error::ENGINE_APP_SIGN_INCORRECT
        );
    }

    /// An app_sign proof with a made-up signature: the guard does not verify signatures.
    fn proof(timestamp_ms: u64, signature: &str) -> Credentials {
        Credentials::AppSign {
            timestamp_ms,
            nonce: "n".into(),
            signature: signature.into(),
        }
    }

    fn check(
        replay: &ReplayGuard,
        user: &str,
        creds: &Credentials,
        now: Now,
    ) -> Result<(), ErrorCode> {
        let Credentials::AppSign {
            timestamp_ms,
            signature,
            ..
        } = creds
        else {
            unreachable!()
        };
        replay.check(user, signature, *timestamp_ms, now)
    }

    #[test]
    fn a_proof_is_spent_only_when_spent() {
        let now = Now::system();
        let mut replay = ReplayGuard::new(now);
        let creds = proof(now.unix_ms, "AB");
        // Checked for a login that then failed: still usable.
        check(&replay, "u1", &creds, now).unwrap();
        check(&replay, "u1", &creds, now).unwrap();
        replay.spend(&creds, "u1", now);
        assert_eq!(
            check(&replay, "u1", &proof(now.unix_ms, "ab"), now),
            Err(error::ROOM_AUTHENTICATION_FAILED),
            "hex case does not make a new proof"
        );
    }

    #[test]
    fn one_users_proofs_do_not_lock_out_another() {
        let now = Now::system();
        let mut replay = ReplayGuard::new(now);
        for i in 0..PROOFS_PER_USER_MAX {
            let creds = proof(now.unix_ms, &format!("{i:x}"));
            check(&replay, "greedy", &creds, now).unwrap();
            replay.spend(&creds, "greedy", now);
        }
        assert_eq!(
            check(&replay, "greedy", &proof(now.unix_ms, "fresh"), now),
            Err(error::ROOM_RATE_LIMITED_LOGIN)
        );
        check(&replay, "other", &proof(now.unix_ms, "fresh"), now).unwrap();
        // Once the window has passed, the greedy user gets in again.
        let later = now.after(limits::SIGNATURE_MAX_SKEW + Duration::from_millis(1));
        check(&replay, "greedy", &proof(later.unix_ms, "fresh"), later).unwrap();
    }

    #[test]
    fn proofs_minted_before_the_start_are_refused() {
        let started = Now::system();
        let replay = ReplayGuard::new(started);
        assert_eq!(
            check(&replay, "u1", &proof(started.unix_ms - 1, "ab"), started),
            Err(error::ROOM_RATE_LIMITED_LOGIN)
        );
        check(&replay, "u1", &proof(started.unix_ms, "ab"), started).unwrap();
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let now = Now::system();
        let mut replay = ReplayGuard::new(now);
        // Timestamped at the edge of the skew ahead: remembered for the longest, twice the skew.
        let ahead = now.unix_ms + limits::SIGNATURE_MAX_SKEW.as_millis() as u64;
        replay.spend(&proof(ahead, "01"), "u1", now);
        replay.spend(&proof(now.unix_ms, "02"), "u2", now);
        assert_eq!(replay.len(), 2);
        let later = now.after(2 * limits::SIGNATURE_MAX_SKEW);
        replay.spend(&proof(later.unix_ms, "03"), "u3", later);
        assert_eq!(replay.len(), 1);
    }

    #[test]
    fn empty_credentials_are_neither_given() {
        let now = Now::system();
        let replay = ReplayGuard::default();
        let creds = Credentials::Token {
            token: String::new(),
        };
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &replay).unwrap_err(),
            error::ROOM_NO_TOKEN_NO_APP_SIGN
        );
        let creds = Credentials::AppSign {
            timestamp_ms: now.unix_ms,
            nonce: "n".into(),
            signature: String::new(),
        };
        assert_eq!(
            check_login(&keys(), &creds, "u1", "r1", now, &replay).unwrap_err(),
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
