//! Token04: the room token minted by the application's own server with its 32-character server secret.
//!
//! Byte-compatible with the vendor's generators (Go, Java, Python, Node, PHP, .NET), so apps keep the token
//! minting they already run. A token is `"04"` + padded standard base64 of (integers big-endian):
//!
//! | mode | layout |
//! |---|---|
//! | [`Mode::Gcm`] | i64 expire · u16 nonce_len (12) · nonce · u16 enc_len · AES-256-GCM ciphertext + 16-byte tag · u8 mode = 1 |
//! | [`Mode::Cbc`] (legacy) | i64 expire · u16 iv_len (16) · iv · u16 ct_len · AES-256-CBC ciphertext (PKCS#7) |
//!
//! The sealed plaintext is the JSON of [`Claims`]; its `payload` is the JSON of a [`Privilege`], or that of a
//! basic token (no room or stream restriction): empty, `null`, or a JSON object without `room_id` and `privilege`.
//!
//! Failures map to error codes as follows (login side; publishing maps every failure to
//! [`error::PUBLISHER_AUTH_FAILED`]):
//!
//! | failure | code |
//! |---|---|
//! | token does not start with `"04"` | [`error::ROOM_TOKEN_VERSION_ERROR`] |
//! | bad base64, truncated, lengths inconsistent, unknown mode byte, JSON with missing or mistyped fields, malformed payload | [`error::ROOM_TOKEN_FORMAT_ERROR`] |
//! | nonce/IV length not 12 (GCM) or 16 (CBC) | [`error::ROOM_TOKEN_NONCE_ERROR`] |
//! | secret not 32 bytes, GCM tag failure, CBC padding failure, CBC plaintext not JSON, clear expire header differs from the sealed one | [`error::ROOM_TOKEN_INNER_ERROR`] |
//! | app_id differs | [`error::ROOM_TOKEN_APP_ID_ERROR`] |
//! | user_id differs | [`error::ROOM_TOKEN_USER_ID_ERROR`] |
//! | `expire <= now` | [`error::ROOM_TOKEN_EXPIRED`] |
//! | payload does not allow login to the room | [`error::ROOM_AUTHENTICATION_FAILED`] |

use std::collections::BTreeMap;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{self, ErrorCode};

/// The only token version accepted, and the prefix of every token.
pub const VERSION: &str = "04";

/// The mode byte that ends a GCM token.
const GCM_MODE_BYTE: u8 = 1;
const GCM_NONCE_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const CBC_IV_LEN: usize = 16;
const CBC_BLOCK_LEN: usize = 16;
/// The server secret is exactly this many bytes: the AES-256 key as written.
pub const SECRET_LEN: usize = 32;

/// The payload keys that make it a privilege payload; a payload with neither is a basic token's.
const PAYLOAD_ROOM_ID: &str = "room_id";
const PAYLOAD_PRIVILEGE: &str = "privilege";
/// Privilege keys of the payload.
const PRIVILEGE_LOGIN: &str = "1";
const PRIVILEGE_PUBLISH: &str = "2";

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// How the claims are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// AES-256-GCM, the current format (ends with mode byte 1).
    Gcm,
    /// AES-256-CBC with PKCS#7, the legacy format (no mode byte). Not authenticated.
    Cbc,
}

/// The sealed plaintext. Field order here is the order [`generate`] writes; parsing accepts any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub app_id: u32,
    pub user_id: String,
    pub nonce: i64,
    /// Creation time, unix seconds.
    pub ctime: i64,
    /// Expiry, unix seconds; the token is valid while `expire > now`.
    pub expire: i64,
    /// Empty (no restriction) or the JSON of a [`Privilege`]. The generators write `null` when given no
    /// payload; that reads as empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub payload: String,
}

/// A JSON string, or `null` read as the empty string.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// What a privilege payload allows: which room, whether to log in and publish there, and which streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    pub room_id: String,
    /// Privilege `"1"`.
    pub login_room: bool,
    /// Privilege `"2"`.
    pub publish: bool,
    /// `None` (JSON null or absent): any stream id may be published.
    pub stream_id_list: Option<Vec<String>>,
}

/// The payload as generators write it: `{"room_id":..,"privilege":{"1":0|1,"2":0|1},"stream_id_list":null|[..]}`.
#[derive(Serialize, Deserialize)]
struct PrivilegeJson {
    room_id: String,
    privilege: BTreeMap<String, u8>,
    #[serde(default)]
    stream_id_list: Option<Vec<String>>,
}

impl Privilege {
    /// The payload JSON in the generators' field order.
    pub fn to_payload(&self) -> String {
        let json = PrivilegeJson {
            room_id: self.room_id.clone(),
            privilege: BTreeMap::from([
                (PRIVILEGE_LOGIN.to_owned(), u8::from(self.login_room)),
                (PRIVILEGE_PUBLISH.to_owned(), u8::from(self.publish)),
            ]),
            stream_id_list: self.stream_id_list.clone(),
        };
        serde_json::to_string(&json).expect("strings and integers always serialize")
    }

    /// Parses a non-empty payload. Missing privilege keys mean "not granted"; values other than 0/1,
    /// a missing `room_id` or `privilege`, or anything that is not this JSON shape -> FORMAT.
    fn from_payload(payload: &str) -> Result<Self, ErrorCode> {
        let json: PrivilegeJson =
            serde_json::from_str(payload).map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;
        if json.privilege.values().any(|&v| v > 1) {
            return Err(error::ROOM_TOKEN_FORMAT_ERROR);
        }
        let granted = |key: &str| json.privilege.get(key) == Some(&1);
        Ok(Self {
            login_room: granted(PRIVILEGE_LOGIN),
            publish: granted(PRIVILEGE_PUBLISH),
            room_id: json.room_id,
            stream_id_list: json.stream_id_list,
        })
    }
}

impl Claims {
    /// The privileges of the payload: `None` for a basic token (no restriction), whose payload is empty or a
    /// JSON object with neither `room_id` nor `privilege` (the generators' samples write `{"demoPayload":""}`).
    /// [`error::ROOM_TOKEN_FORMAT_ERROR`] when it is anything else that is not a privilege payload.
    pub fn privilege(&self) -> Result<Option<Privilege>, ErrorCode> {
        if self.payload.is_empty() {
            return Ok(None);
        }
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.payload).map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;
        if !json.contains_key(PAYLOAD_ROOM_ID) && !json.contains_key(PAYLOAD_PRIVILEGE) {
            return Ok(None);
        }
        Privilege::from_payload(&self.payload).map(Some)
    }
}

/// Mints a token. Deterministic when `iv` is given (12 bytes for GCM, 16 for CBC, else NONCE error);
/// a random one is drawn from the OS otherwise.
///
/// Errors: secret not 32 bytes -> INNER; plaintext too long for the u16 length field -> FORMAT.
pub fn generate(
    secret: &str,
    claims: &Claims,
    mode: Mode,
    iv: Option<&[u8]>,
) -> Result<String, ErrorCode> {
    let key = secret_key(secret)?;
    let iv_len = match mode {
        Mode::Gcm => GCM_NONCE_LEN,
        Mode::Cbc => CBC_IV_LEN,
    };
    let iv = match iv {
        Some(iv) if iv.len() != iv_len => return Err(error::ROOM_TOKEN_NONCE_ERROR),
        Some(iv) => iv.to_vec(),
        None => {
            let mut iv = vec![0u8; iv_len];
            rand::rngs::OsRng.fill_bytes(&mut iv);
            iv
        }
    };
    let plaintext = serde_json::to_vec(claims).map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;
    let sealed = match mode {
        Mode::Gcm => Aes256Gcm::new(key.into())
            .encrypt(Nonce::from_slice(&iv), plaintext.as_slice())
            .map_err(|_| error::ROOM_TOKEN_INNER_ERROR)?,
        Mode::Cbc => Aes256CbcEnc::new(key.into(), iv.as_slice().into())
            .encrypt_padded_vec_mut::<Pkcs7>(&plaintext),
    };
    let sealed_len = u16::try_from(sealed.len()).map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;

    let mut bytes = Vec::with_capacity(8 + 2 + iv.len() + 2 + sealed.len() + 1);
    bytes.extend_from_slice(&claims.expire.to_be_bytes());
    bytes.extend_from_slice(&(iv.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&iv);
    bytes.extend_from_slice(&sealed_len.to_be_bytes());
    bytes.extend_from_slice(&sealed);
    if mode == Mode::Gcm {
        bytes.push(GCM_MODE_BYTE);
    }
    Ok(format!("{VERSION}{}", STANDARD.encode(bytes)))
}

/// Checks what can be checked without the secret: the version, the base64 and the layout of the token
/// (VERSION, FORMAT or NONCE). A client uses it to refuse a garbage token at once; the server still decides.
pub fn check_format(token: &str) -> Result<(), ErrorCode> {
    let body = token
        .strip_prefix(VERSION)
        .ok_or(error::ROOM_TOKEN_VERSION_ERROR)?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;
    let layout = Layout::parse(&bytes)?;
    let iv_len = match layout.trailer {
        [] => CBC_IV_LEN,
        [GCM_MODE_BYTE] => GCM_NONCE_LEN,
        _ => return Err(error::ROOM_TOKEN_FORMAT_ERROR),
    };
    if layout.iv.len() != iv_len {
        return Err(error::ROOM_TOKEN_NONCE_ERROR);
    }
    if layout.sealed.is_empty() {
        return Err(error::ROOM_TOKEN_FORMAT_ERROR);
    }
    Ok(())
}

/// Decrypts and parses a token without policy checks (see [`verify`]). The mode is told by what follows
/// the ciphertext: exactly one byte (which must be 1) is GCM, nothing is CBC, anything else is FORMAT.
/// Error codes: see the module table.
pub fn decode(secret: &str, token: &str) -> Result<(Claims, Mode), ErrorCode> {
    let body = token
        .strip_prefix(VERSION)
        .ok_or(error::ROOM_TOKEN_VERSION_ERROR)?;
    let key = secret_key(secret)?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|_| error::ROOM_TOKEN_FORMAT_ERROR)?;
    let layout = Layout::parse(&bytes)?;

    let (plaintext, mode) = match layout.trailer {
        [] => {
            if layout.iv.len() != CBC_IV_LEN {
                return Err(error::ROOM_TOKEN_NONCE_ERROR);
            }
            if layout.sealed.is_empty() || layout.sealed.len() % CBC_BLOCK_LEN != 0 {
                return Err(error::ROOM_TOKEN_FORMAT_ERROR);
            }
            let plaintext = Aes256CbcDec::new(key.into(), layout.iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(layout.sealed)
                .map_err(|_| error::ROOM_TOKEN_INNER_ERROR)?;
            (plaintext, Mode::Cbc)
        }
        [GCM_MODE_BYTE] => {
            if layout.iv.len() != GCM_NONCE_LEN {
                return Err(error::ROOM_TOKEN_NONCE_ERROR);
            }
            if layout.sealed.len() < GCM_TAG_LEN {
                return Err(error::ROOM_TOKEN_FORMAT_ERROR);
            }
            let plaintext = Aes256Gcm::new(key.into())
                .decrypt(Nonce::from_slice(layout.iv), layout.sealed)
                .map_err(|_| error::ROOM_TOKEN_INNER_ERROR)?;
            (plaintext, Mode::Gcm)
        }
        _ => return Err(error::ROOM_TOKEN_FORMAT_ERROR),
    };

    let claims: Claims =
        serde_json::from_slice(&plaintext).map_err(|e| match (mode, e.classify()) {
            // CBC is unauthenticated: a wrong secret can leave valid padding over garbage, which is a
            // decryption failure, not a badly formed token. Well-formed JSON of the wrong shape is FORMAT.
            (Mode::Cbc, serde_json::error::Category::Data) | (Mode::Gcm, _) => {
                error::ROOM_TOKEN_FORMAT_ERROR
            }
            (Mode::Cbc, _) => error::ROOM_TOKEN_INNER_ERROR,
        })?;
    // The clear expire header is outside the seal; a header that disagrees with the sealed expire was altered.
    if claims.expire != layout.expire {
        return Err(error::ROOM_TOKEN_INNER_ERROR);
    }
    Ok((claims, mode))
}

/// [`decode`], then checks in this order: app_id (APP_ID), user_id (USER_ID), `expire > now_unix` (EXPIRED).
/// Room and publish privileges are separate: [`may_login`], [`may_publish`].
pub fn verify(
    secret: &str,
    token: &str,
    app_id: u32,
    user_id: &str,
    now_unix: i64,
) -> Result<Claims, ErrorCode> {
    let (claims, _) = decode(secret, token)?;
    if claims.app_id != app_id {
        return Err(error::ROOM_TOKEN_APP_ID_ERROR);
    }
    if claims.user_id != user_id {
        return Err(error::ROOM_TOKEN_USER_ID_ERROR);
    }
    if claims.expire <= now_unix {
        return Err(error::ROOM_TOKEN_EXPIRED);
    }
    Ok(claims)
}

/// Everything a login checks of a token, in order: given at all ([`error::ROOM_NO_TOKEN_NO_APP_SIGN`]), within
/// the length limit (FORMAT), [`verify`], then [`may_login`] to `room_id`. The server's login and its
/// `token verify` command both call this, so the two never disagree.
pub fn check_login(
    secret: &str,
    token: &str,
    app_id: u32,
    user_id: &str,
    room_id: &str,
    now_unix: i64,
) -> Result<Claims, ErrorCode> {
    if token.is_empty() {
        return Err(error::ROOM_NO_TOKEN_NO_APP_SIGN);
    }
    crate::validate::token(token)?;
    let claims = verify(secret, token, app_id, user_id, now_unix)?;
    may_login(&claims, room_id)?;
    Ok(claims)
}

/// May these (verified) claims log in to `room_id`? A basic token places no restriction; otherwise the
/// payload's room must be `room_id` and privilege "1" granted, else [`error::ROOM_AUTHENTICATION_FAILED`].
/// A malformed payload is [`error::ROOM_TOKEN_FORMAT_ERROR`].
pub fn may_login(claims: &Claims, room_id: &str) -> Result<(), ErrorCode> {
    match claims.privilege()? {
        None => Ok(()),
        Some(p) if p.room_id == room_id && p.login_room => Ok(()),
        Some(_) => Err(error::ROOM_AUTHENTICATION_FAILED),
    }
}

/// May these (verified) claims publish `stream_id` in `room_id`? A basic token places no restriction;
/// otherwise the payload's room must be `room_id`, privilege "2" granted, and `stream_id` in
/// `stream_id_list` when that is not null. Every failure, a malformed payload included, is
/// [`error::PUBLISHER_AUTH_FAILED`].
pub fn may_publish(claims: &Claims, room_id: &str, stream_id: &str) -> Result<(), ErrorCode> {
    let privilege = claims
        .privilege()
        .map_err(|_| error::PUBLISHER_AUTH_FAILED)?;
    let Some(p) = privilege else {
        return Ok(());
    };
    let stream_allowed = p
        .stream_id_list
        .as_ref()
        .is_none_or(|list| list.iter().any(|s| s == stream_id));
    if p.room_id == room_id && p.publish && stream_allowed {
        Ok(())
    } else {
        Err(error::PUBLISHER_AUTH_FAILED)
    }
}

/// The AES-256 key: the 32 bytes of the secret as written.
fn secret_key(secret: &str) -> Result<&[u8; SECRET_LEN], ErrorCode> {
    secret
        .as_bytes()
        .try_into()
        .map_err(|_| error::ROOM_TOKEN_INNER_ERROR)
}

/// The decoded token bytes split along the layout; the trailer is whatever follows the ciphertext.
struct Layout<'a> {
    expire: i64,
    iv: &'a [u8],
    sealed: &'a [u8],
    trailer: &'a [u8],
}

impl<'a> Layout<'a> {
    /// Any read past the end is a truncated token -> FORMAT.
    fn parse(bytes: &'a [u8]) -> Result<Self, ErrorCode> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&'a [u8], ErrorCode> {
            if rest.len() < n {
                return Err(error::ROOM_TOKEN_FORMAT_ERROR);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let expire = i64::from_be_bytes(take(8)?.try_into().expect("took 8 bytes"));
        let iv_len = u16::from_be_bytes(take(2)?.try_into().expect("took 2 bytes"));
        let iv = take(usize::from(iv_len))?;
        let sealed_len = u16::from_be_bytes(take(2)?.try_into().expect("took 2 bytes"));
        let sealed = take(usize::from(sealed_len))?;
        Ok(Self {
            expire,
            iv,
            sealed,
            trailer: rest,
        })
    }
}
