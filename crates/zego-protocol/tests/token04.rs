//! Token04: the shared vectors decode and re-mint byte for byte, both modes round-trip, every kind of bad
//! token is refused with its own code, payload privileges gate login and publishing, and no input panics.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use zego_protocol::token04::{
    check_format, check_login, decode, generate, may_login, may_publish, verify, Claims, Mode,
    Privilege, VERSION,
};
use zego_protocol::{error, limits};

const SECRET: &str = "fa94dd0f974cf2e293728a526b028271";
const OTHER_SECRET: &str = "00000000000000000000000000000000";

/// The reference vectors: `shared/reference/token04-vectors.json` beside the checkout when it is there, else the
/// copy kept in `tests/data/` (a clone anywhere else), which `reference_copy_is_current` keeps equal to the
/// reference wherever both are present.
fn vectors_json() -> String {
    let reference = reference_path();
    if reference.exists() {
        return std::fs::read_to_string(reference).unwrap();
    }
    include_str!("data/token04-vectors.json").to_owned()
}

fn reference_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/token04-vectors.json")
}

#[test]
fn reference_copy_is_current() {
    let reference = reference_path();
    if reference.exists() {
        let a: Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
        let b: Value = serde_json::from_str(include_str!("data/token04-vectors.json")).unwrap();
        assert_eq!(
            a, b,
            "tests/data/token04-vectors.json differs from the reference"
        );
    }
}

struct Vector {
    name: String,
    mode: Mode,
    claims: Claims,
    iv: Vec<u8>,
    secret: String,
    plaintext: String,
    token: String,
}

fn vectors() -> Vec<Vector> {
    let doc: Value = serde_json::from_str(&vectors_json()).unwrap();
    let vectors: Vec<Vector> = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            Vector {
                name: s("name"),
                mode: match v["mode"].as_str().unwrap() {
                    "gcm" => Mode::Gcm,
                    "cbc" => Mode::Cbc,
                    other => panic!("unknown mode {other}"),
                },
                claims: Claims {
                    app_id: v["app_id"].as_u64().unwrap().try_into().unwrap(),
                    user_id: s("user_id"),
                    nonce: v["nonce"].as_i64().unwrap(),
                    ctime: v["ctime"].as_i64().unwrap(),
                    expire: v["expire"].as_i64().unwrap(),
                    payload: s("payload"),
                },
                iv: s("iv").into_bytes(),
                secret: s("secret"),
                plaintext: s("plaintext"),
                token: s("token"),
            }
        })
        .collect();
    assert_eq!(vectors.len(), 7);
    vectors
}

fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap()
}

fn claims(payload: &str) -> Claims {
    Claims {
        app_id: 42,
        user_id: "anchor".into(),
        nonce: -123,
        ctime: 1_800_000_000,
        expire: 1_800_003_600,
        payload: payload.into(),
    }
}

fn privilege(room: &str, login: bool, publish: bool, streams: Option<&[&str]>) -> Privilege {
    Privilege {
        room_id: room.into(),
        login_room: login,
        publish,
        stream_id_list: streams.map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}

fn token_bytes(token: &str) -> Vec<u8> {
    STANDARD.decode(&token[2..]).unwrap()
}

fn token_from(bytes: &[u8]) -> String {
    format!("04{}", STANDARD.encode(bytes))
}

/// Offset of the ciphertext in a decoded token: expire(8) + iv_len(2) + iv + len(2).
fn sealed_offset(bytes: &[u8]) -> usize {
    8 + 2 + usize::from(u16::from_be_bytes([bytes[8], bytes[9]])) + 2
}

#[test]
fn every_vector_decodes_with_its_mode_and_fields() {
    for v in vectors() {
        let (claims, mode) =
            decode(&v.secret, &v.token).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(mode, v.mode, "{}", v.name);
        assert_eq!(claims, v.claims, "{}", v.name);

        // The sealed plaintext is the vector's plaintext, compared as JSON values.
        let ours: Value = serde_json::to_value(&claims).unwrap();
        let theirs: Value = serde_json::from_str(&v.plaintext).unwrap();
        assert_eq!(ours, theirs, "{}", v.name);

        let bytes = token_bytes(&v.token);
        assert_eq!(&bytes[..8], &v.claims.expire.to_be_bytes(), "{}", v.name);
        assert_eq!(&bytes[10..10 + v.iv.len()], v.iv.as_slice(), "{}", v.name);
    }
}

#[test]
fn generate_with_the_vector_iv_reproduces_the_token_byte_for_byte() {
    // The vectors' plaintext field order is the one generate() writes, so tokens match exactly.
    for v in vectors() {
        let token = generate(&v.secret, &v.claims, v.mode, Some(&v.iv)).unwrap();
        assert_eq!(token, v.token, "{}", v.name);
    }
}

#[test]
fn plaintext_field_order_does_not_matter() {
    // Another generator's field order, sealed by hand with the same layout.
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    let plaintext = br#"{"payload":"","expire":1800003600,"ctime":1800000000,"user_id":"anchor","nonce":-123,"app_id":42}"#;
    let iv = b"abcdefghijkl";
    let sealed = Aes256Gcm::new_from_slice(SECRET.as_bytes())
        .unwrap()
        .encrypt(Nonce::from_slice(iv), plaintext.as_slice())
        .unwrap();
    let mut bytes = 1_800_003_600i64.to_be_bytes().to_vec();
    bytes.extend_from_slice(&12u16.to_be_bytes());
    bytes.extend_from_slice(iv);
    bytes.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&sealed);
    bytes.push(1);
    let (decoded, mode) = decode(SECRET, &token_from(&bytes)).unwrap();
    assert_eq!(mode, Mode::Gcm);
    assert_eq!(decoded, claims(""));
}

#[test]
fn both_modes_round_trip_with_random_ivs() {
    let payload = privilege("room-9", true, true, Some(&["a", "b"])).to_payload();
    for mode in [Mode::Gcm, Mode::Cbc] {
        let original = claims(&payload);
        let first = generate(SECRET, &original, mode, None).unwrap();
        let second = generate(SECRET, &original, mode, None).unwrap();
        assert!(first.starts_with(VERSION));
        assert_ne!(first, second, "{mode:?}: the IV is random");
        for token in [first, second] {
            assert_eq!(decode(SECRET, &token).unwrap(), (original.clone(), mode));
            assert_eq!(
                verify(SECRET, &token, 42, "anchor", 1_800_000_000).unwrap(),
                original
            );
        }
    }
}

#[test]
fn privilege_payload_round_trips_and_matches_the_generators() {
    let v = vector("gcm_stream_list");
    let p = v.claims.privilege().unwrap().unwrap();
    assert_eq!(p, privilege("live-1", true, true, Some(&["s1", "s2"])));
    assert_eq!(p.to_payload(), v.claims.payload);
    assert_eq!(vector("gcm_basic_no_payload").claims.privilege(), Ok(None));
}

#[test]
fn tampered_tokens_are_refused() {
    for v in vectors() {
        let bytes = token_bytes(&v.token);
        let start = sealed_offset(&bytes);
        let end = if v.mode == Mode::Gcm {
            bytes.len() - 1
        } else {
            bytes.len()
        };
        // First ciphertext byte, last byte before the tag / last CBC block, and the tag's last byte.
        for at in [start, end - 17, end - 1] {
            let mut t = bytes.clone();
            t[at] ^= 0x01;
            assert_eq!(
                decode(&v.secret, &token_from(&t)),
                Err(error::ROOM_TOKEN_INNER_ERROR),
                "{} byte {at}",
                v.name
            );
        }
        // The clear expire header is checked against the sealed one.
        let mut t = bytes.clone();
        t[7] ^= 0x01;
        assert_eq!(
            decode(&v.secret, &token_from(&t)),
            Err(error::ROOM_TOKEN_INNER_ERROR),
            "{} expire header",
            v.name
        );
    }
}

#[test]
fn truncated_or_malformed_layouts_are_format_errors() {
    for v in vectors() {
        let bytes = token_bytes(&v.token);
        for len in [0, 5, 8, 9, 10, 21, bytes.len() - 2] {
            assert_eq!(
                decode(&v.secret, &token_from(&bytes[..len])),
                Err(error::ROOM_TOKEN_FORMAT_ERROR),
                "{} cut to {len}",
                v.name
            );
        }
        // Two bytes after the ciphertext: neither mode.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[1, 1]);
        assert_eq!(
            decode(&v.secret, &token_from(&longer)),
            Err(error::ROOM_TOKEN_FORMAT_ERROR),
            "{}",
            v.name
        );
    }
    // GCM with an unknown mode byte.
    let v = vector("gcm_basic_no_payload");
    let mut bytes = token_bytes(&v.token);
    *bytes.last_mut().unwrap() = 2;
    assert_eq!(
        decode(SECRET, &token_from(&bytes)),
        Err(error::ROOM_TOKEN_FORMAT_ERROR)
    );
    // The token "04" alone.
    assert_eq!(decode(SECRET, "04"), Err(error::ROOM_TOKEN_FORMAT_ERROR));
}

#[test]
fn plaintext_with_missing_or_mistyped_fields_is_a_format_error() {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    let seal = |plaintext: &str| {
        let iv = b"abcdefghijkl";
        let sealed = Aes256Gcm::new_from_slice(SECRET.as_bytes())
            .unwrap()
            .encrypt(Nonce::from_slice(iv), plaintext.as_bytes())
            .unwrap();
        let mut bytes = 100i64.to_be_bytes().to_vec();
        bytes.extend_from_slice(&12u16.to_be_bytes());
        bytes.extend_from_slice(iv);
        bytes.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&sealed);
        bytes.push(1);
        token_from(&bytes)
    };
    for plaintext in [
        r#"{"app_id":1,"user_id":"u","nonce":1,"ctime":1,"payload":""}"#,
        r#"{"app_id":-1,"user_id":"u","nonce":1,"ctime":1,"expire":100,"payload":""}"#,
        r#"{"app_id":4294967296,"user_id":"u","nonce":1,"ctime":1,"expire":100,"payload":""}"#,
        r#"{"app_id":1,"user_id":7,"nonce":1,"ctime":1,"expire":100,"payload":""}"#,
        r#"not json"#,
        r#"[]"#,
    ] {
        assert_eq!(
            decode(SECRET, &seal(plaintext)),
            Err(error::ROOM_TOKEN_FORMAT_ERROR),
            "{plaintext}"
        );
    }
    let ok =
        r#"{"app_id":4294967295,"user_id":"u","nonce":-9,"ctime":1,"expire":100,"payload":""}"#;
    let (claims, _) = decode(SECRET, &seal(ok)).unwrap();
    assert_eq!((claims.app_id, claims.nonce), (u32::MAX, -9));
}

#[test]
fn wrong_iv_length_is_a_nonce_error() {
    for v in vectors() {
        let bytes = token_bytes(&v.token);
        let iv_len = usize::from(u16::from_be_bytes([bytes[8], bytes[9]]));
        // Move one byte from the IV into... nowhere: declare it one shorter and drop its last byte.
        let mut t = bytes[..8].to_vec();
        t.extend_from_slice(&((iv_len - 1) as u16).to_be_bytes());
        t.extend_from_slice(&bytes[10..10 + iv_len - 1]);
        t.extend_from_slice(&bytes[10 + iv_len..]);
        assert_eq!(
            decode(&v.secret, &token_from(&t)),
            Err(error::ROOM_TOKEN_NONCE_ERROR),
            "{}",
            v.name
        );
    }
    let c = claims("");
    assert_eq!(
        generate(SECRET, &c, Mode::Gcm, Some(&[0; 16])),
        Err(error::ROOM_TOKEN_NONCE_ERROR)
    );
    assert_eq!(
        generate(SECRET, &c, Mode::Cbc, Some(&[0; 12])),
        Err(error::ROOM_TOKEN_NONCE_ERROR)
    );
}

#[test]
fn wrong_or_malformed_secret_is_an_inner_error() {
    for v in vectors() {
        assert_eq!(
            decode(OTHER_SECRET, &v.token),
            Err(error::ROOM_TOKEN_INNER_ERROR),
            "{}",
            v.name
        );
        assert_eq!(
            decode(&v.secret[..31], &v.token),
            Err(error::ROOM_TOKEN_INNER_ERROR),
            "{}",
            v.name
        );
    }
    assert_eq!(
        generate("short", &claims(""), Mode::Gcm, None),
        Err(error::ROOM_TOKEN_INNER_ERROR)
    );
}

#[test]
fn verify_checks_app_user_and_expiry() {
    let v = vector("gcm_privilege_login_publish");
    let (app, user, expire) = (v.claims.app_id, v.claims.user_id.as_str(), v.claims.expire);
    assert_eq!(
        verify(SECRET, &v.token, app, user, expire - 1),
        Ok(v.claims.clone())
    );
    assert_eq!(
        verify(SECRET, &v.token, app + 1, user, expire - 1),
        Err(error::ROOM_TOKEN_APP_ID_ERROR)
    );
    assert_eq!(
        verify(SECRET, &v.token, app, "user2", expire - 1),
        Err(error::ROOM_TOKEN_USER_ID_ERROR)
    );
    assert_eq!(
        verify(SECRET, &v.token, app, user, expire),
        Err(error::ROOM_TOKEN_EXPIRED)
    );
    assert_eq!(
        verify(SECRET, &v.token, app, user, expire + 1),
        Err(error::ROOM_TOKEN_EXPIRED)
    );
    // Same checks on a legacy CBC token.
    let v = vector("cbc_legacy_privilege");
    assert_eq!(
        verify(SECRET, &v.token, 42, "anchor", 0),
        Ok(v.claims.clone())
    );
    assert_eq!(
        verify(SECRET, &v.token, 43, "anchor", 0),
        Err(error::ROOM_TOKEN_APP_ID_ERROR)
    );
    assert_eq!(
        verify(SECRET, &v.token, 42, "Anchor", 0),
        Err(error::ROOM_TOKEN_USER_ID_ERROR)
    );
    assert_eq!(
        verify(SECRET, &v.token, 42, "anchor", v.claims.expire),
        Err(error::ROOM_TOKEN_EXPIRED)
    );
}

#[test]
fn wrong_version_and_bad_base64_are_refused() {
    let v = vector("gcm_basic_no_payload");
    let as_03 = format!("03{}", &v.token[2..]);
    assert_eq!(decode(SECRET, &as_03), Err(error::ROOM_TOKEN_VERSION_ERROR));
    assert_eq!(decode(SECRET, ""), Err(error::ROOM_TOKEN_VERSION_ERROR));
    assert_eq!(
        decode(SECRET, &v.token[2..]),
        Err(error::ROOM_TOKEN_VERSION_ERROR)
    );
    for body in ["!!!!", "AAAAA", "AAAA=A==", "AB==x", " AAAA"] {
        assert_eq!(
            decode(SECRET, &format!("04{body}")),
            Err(error::ROOM_TOKEN_FORMAT_ERROR),
            "{body}"
        );
    }
    // Unpadded base64 of a valid token is not standard padded base64.
    let padded = vector("gcm_privilege_login_publish").token;
    let unpadded = padded.trim_end_matches('=');
    assert_ne!(unpadded, padded);
    assert_eq!(
        decode(SECRET, unpadded),
        Err(error::ROOM_TOKEN_FORMAT_ERROR)
    );
}

#[test]
fn empty_payload_places_no_restriction() {
    let c = vector("gcm_basic_no_payload").claims;
    assert_eq!(may_login(&c, "any-room"), Ok(()));
    assert_eq!(may_publish(&c, "any-room", "any-stream"), Ok(()));
}

#[test]
fn login_only_token_cannot_publish() {
    let c = vector("gcm_privilege_login_only").claims;
    assert_eq!(may_login(&c, "room1"), Ok(()));
    assert_eq!(
        may_publish(&c, "room1", "s1"),
        Err(error::PUBLISHER_AUTH_FAILED)
    );
}

#[test]
fn privileges_hold_only_for_their_room() {
    let c = vector("gcm_privilege_login_publish").claims;
    assert_eq!(may_login(&c, "room1"), Ok(()));
    assert_eq!(may_publish(&c, "room1", "whatever"), Ok(()));
    assert_eq!(
        may_login(&c, "room2"),
        Err(error::ROOM_AUTHENTICATION_FAILED)
    );
    assert_eq!(
        may_publish(&c, "room2", "whatever"),
        Err(error::PUBLISHER_AUTH_FAILED)
    );
}

#[test]
fn stream_id_list_limits_publishable_streams() {
    let c = vector("gcm_stream_list").claims;
    assert_eq!(may_publish(&c, "live-1", "s1"), Ok(()));
    assert_eq!(may_publish(&c, "live-1", "s2"), Ok(()));
    assert_eq!(
        may_publish(&c, "live-1", "s3"),
        Err(error::PUBLISHER_AUTH_FAILED)
    );
    assert_eq!(
        may_publish(&c, "live-2", "s1"),
        Err(error::PUBLISHER_AUTH_FAILED)
    );
    // An empty list allows no stream at all.
    let c = claims(&privilege("live-1", true, true, Some(&[])).to_payload());
    assert_eq!(
        may_publish(&c, "live-1", "s1"),
        Err(error::PUBLISHER_AUTH_FAILED)
    );
}

#[test]
fn publish_only_token_cannot_log_in() {
    let c = claims(&privilege("r", false, true, None).to_payload());
    assert_eq!(may_login(&c, "r"), Err(error::ROOM_AUTHENTICATION_FAILED));
    assert_eq!(may_publish(&c, "r", "s"), Ok(()));
}

#[test]
fn malformed_payloads_are_refused() {
    for payload in [
        "x",
        "[]",
        "null",
        r#"{"room_id":"r"}"#,
        r#"{"privilege":{"1":1}}"#,
        r#"{"room_id":"r","privilege":{"1":2}}"#,
        r#"{"room_id":"r","privilege":{"1":"1"}}"#,
        r#"{"room_id":1,"privilege":{"1":1}}"#,
        r#"{"room_id":"r","privilege":{"1":1},"stream_id_list":"s"}"#,
    ] {
        let c = claims(payload);
        assert_eq!(
            c.privilege(),
            Err(error::ROOM_TOKEN_FORMAT_ERROR),
            "{payload}"
        );
        assert_eq!(
            may_login(&c, "r"),
            Err(error::ROOM_TOKEN_FORMAT_ERROR),
            "{payload}"
        );
        assert_eq!(
            may_publish(&c, "r", "s"),
            Err(error::PUBLISHER_AUTH_FAILED),
            "{payload}"
        );
    }
    // Missing privilege keys are "not granted"; a missing stream_id_list is "any stream".
    let c = claims(r#"{"room_id":"r","privilege":{"1":1}}"#);
    assert_eq!(c.privilege(), Ok(Some(privilege("r", true, false, None))));
}

/// A token sealed the way the vendor's generators seal one: GCM as Python and Node do (12-byte nonce, tag appended,
/// mode byte 1), CBC as Java does (16-byte IV, PKCS#7, no mode byte), around a plaintext written as each writes it.
fn seal_like_a_generator(mode: Mode, plaintext: &str, expire: i64) -> String {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockEncryptMut, KeyIvInit};
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    let (iv, sealed): (&[u8], Vec<u8>) = match mode {
        Mode::Gcm => {
            let iv = b"k3x9q0a7m2zd";
            let sealed = Aes256Gcm::new_from_slice(SECRET.as_bytes())
                .unwrap()
                .encrypt(Nonce::from_slice(iv), plaintext.as_bytes())
                .unwrap();
            (iv, sealed)
        }
        Mode::Cbc => {
            let iv = b"cceutxv9vrhfnx0r";
            let sealed = cbc::Encryptor::<aes::Aes256>::new(SECRET.as_bytes().into(), iv.into())
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
            (iv, sealed)
        }
    };
    let mut bytes = expire.to_be_bytes().to_vec();
    bytes.extend_from_slice(&(iv.len() as u16).to_be_bytes());
    bytes.extend_from_slice(iv);
    bytes.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&sealed);
    if mode == Mode::Gcm {
        bytes.push(1);
    }
    token_from(&bytes)
}

#[test]
fn the_generators_basic_tokens_allow_any_room_and_stream() {
    let expire = 1_800_003_600;
    // (generator, mode, plaintext) as each writes a basic token: Python's sample passes json.dumps of
    // {"demoPayload": ""} or None, Node's sample passes '' (and undefined becomes ''), Java's json-simple writes
    // its own field order, escapes '/' and writes a missing payload as null.
    let cases = [
        (
            "python json payload",
            Mode::Gcm,
            r#"{"app_id":42,"user_id":"anchor","nonce":77,"ctime":1800000000,"expire":1800003600,"payload":"{\"demoPayload\": \"\"}"}"#,
        ),
        (
            "python null payload",
            Mode::Gcm,
            r#"{"app_id":42,"user_id":"anchor","nonce":77,"ctime":1800000000,"expire":1800003600,"payload":null}"#,
        ),
        (
            "node empty payload",
            Mode::Gcm,
            r#"{"app_id":42,"user_id":"anchor","nonce":-2147483648,"ctime":1800000000,"expire":1800003600,"payload":""}"#,
        ),
        (
            "java json payload",
            Mode::Cbc,
            r#"{"ctime":1800000000,"app_id":42,"payload":"{\"payload\":\"pay\/load\"}","expire":1800003600,"user_id":"anchor","nonce":-5}"#,
        ),
        (
            "java null payload",
            Mode::Cbc,
            r#"{"ctime":1800000000,"app_id":42,"payload":null,"expire":1800003600,"user_id":"anchor","nonce":-5}"#,
        ),
        (
            "java empty payload",
            Mode::Cbc,
            r#"{"ctime":1800000000,"app_id":42,"payload":"","expire":1800003600,"user_id":"anchor","nonce":-5}"#,
        ),
        (
            "no payload field",
            Mode::Gcm,
            r#"{"app_id":42,"user_id":"anchor","nonce":1,"ctime":1800000000,"expire":1800003600}"#,
        ),
    ];
    for (name, mode, plaintext) in cases {
        let token = seal_like_a_generator(mode, plaintext, expire);
        let (claims, decoded_mode) =
            decode(SECRET, &token).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded_mode, mode, "{name}");
        assert_eq!(claims.privilege(), Ok(None), "{name}");
        for room in ["room1", "any-other-room"] {
            assert_eq!(
                check_login(SECRET, &token, 42, "anchor", room, expire - 1).map(|_| ()),
                Ok(()),
                "{name} in {room}"
            );
            assert_eq!(may_publish(&claims, room, "any-stream"), Ok(()), "{name}");
        }
        // Basic, not unchecked: the other checks still hold.
        assert_eq!(
            check_login(SECRET, &token, 42, "anchor", "room1", expire).unwrap_err(),
            error::ROOM_TOKEN_EXPIRED,
            "{name}"
        );
        assert_eq!(
            check_login(SECRET, &token, 43, "anchor", "room1", 0).unwrap_err(),
            error::ROOM_TOKEN_APP_ID_ERROR,
            "{name}"
        );
    }
}

#[test]
fn the_generators_privilege_tokens_keep_their_restrictions() {
    // Python's sample: json.dumps of the privilege dict, with its default ", " and ": " separators.
    let plaintext = r#"{"app_id":42,"user_id":"anchor","nonce":9,"ctime":1800000000,"expire":1800003600,"payload":"{\"room_id\": \"room1\", \"privilege\": {\"1\": 1, \"2\": 0}, \"stream_id_list\": null}"}"#;
    for mode in [Mode::Gcm, Mode::Cbc] {
        let token = seal_like_a_generator(mode, plaintext, 1_800_003_600);
        let (claims, _) = decode(SECRET, &token).unwrap();
        assert_eq!(
            claims.privilege(),
            Ok(Some(privilege("room1", true, false, None)))
        );
        assert!(check_login(SECRET, &token, 42, "anchor", "room1", 0).is_ok());
        assert_eq!(
            check_login(SECRET, &token, 42, "anchor", "room2", 0).unwrap_err(),
            error::ROOM_AUTHENTICATION_FAILED
        );
        assert_eq!(
            may_publish(&claims, "room1", "s"),
            Err(error::PUBLISHER_AUTH_FAILED)
        );
    }
}

#[test]
fn check_login_refuses_a_missing_or_oversized_token_before_decrypting() {
    assert_eq!(
        check_login(SECRET, "", 42, "anchor", "r", 0).unwrap_err(),
        error::ROOM_NO_TOKEN_NO_APP_SIGN
    );
    let long = format!("04{}", "A".repeat(limits::TOKEN_MAX));
    assert_eq!(
        check_login(SECRET, &long, 42, "anchor", "r", 0).unwrap_err(),
        error::ROOM_TOKEN_FORMAT_ERROR
    );
}

#[test]
fn no_input_panics() {
    let mut rng = StdRng::seed_from_u64(0x0404);
    let originals: Vec<Vec<u8>> = vectors().iter().map(|v| token_bytes(&v.token)).collect();
    for i in 0..20_000 {
        let token = match i % 4 {
            // Random bytes behind the version.
            0 => {
                let len = rng.gen_range(0..200);
                let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                token_from(&bytes)
            }
            // A real token with a few bytes changed, cut or extended.
            1 | 2 => {
                let mut bytes = originals[rng.gen_range(0..originals.len())].clone();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = rng.gen();
                }
                match rng.gen_range(0..3) {
                    0 => bytes.truncate(rng.gen_range(0..bytes.len())),
                    1 => bytes.extend((0..rng.gen_range(0..4)).map(|_| rng.gen::<u8>())),
                    _ => {}
                }
                token_from(&bytes)
            }
            // Arbitrary text, including non-ASCII, with or without the version.
            _ => {
                let len = rng.gen_range(0..80);
                let text: String = (0..len).map(|_| rng.gen::<char>()).collect();
                if rng.gen() {
                    format!("04{text}")
                } else {
                    text
                }
            }
        };
        if let Ok((claims, _)) = decode(SECRET, &token) {
            let _ = may_login(&claims, "room1");
            let _ = may_publish(&claims, "room1", "s1");
        }
        let _ = verify(SECRET, &token, 42, "anchor", 0);
    }
}

#[test]
fn the_format_is_checked_without_the_secret() {
    for v in vectors() {
        assert_eq!(check_format(&v.token), Ok(()), "{}", v.name);
    }
    assert_eq!(
        check_format("garbage"),
        Err(error::ROOM_TOKEN_VERSION_ERROR)
    );
    assert_eq!(check_format("04!!!"), Err(error::ROOM_TOKEN_FORMAT_ERROR));
    assert_eq!(
        check_format(&token_from(&[0; 5])),
        Err(error::ROOM_TOKEN_FORMAT_ERROR)
    );
    let token = vector("gcm_basic_no_payload").token;
    let mut bytes = token_bytes(&token);
    bytes.push(7);
    assert_eq!(
        check_format(&token_from(&bytes)),
        Err(error::ROOM_TOKEN_FORMAT_ERROR)
    );
}
