//! Secrets out of logs. Login tokens, signatures and keys travel in signaling frames that the WebSocket layer logs
//! at TRACE; [`secrets`] replaces their values with [`REDACTED`] in any log line, whether they appear as JSON, as
//! escaped JSON inside a Debug string, as `name=value` or `name: value`, or inside a hex dump of a text frame.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What a secret value becomes in a log line or a Debug impl.
pub const REDACTED: &str = "<redacted>";

/// Names whose values are secrets, matched case-insensitively as whole words.
const SECRET_NAMES: &[&str] = &[
    "token",
    "signature",
    "app_sign",
    "server_secret",
    "secret",
    "authorization",
    "password",
    "ice-pwd",
];

/// Hex dumps shorter than this cannot hold a secret worth finding.
const MIN_HEX_DUMP: usize = 16;

/// `text` with the value of every secret-named field replaced by [`REDACTED`]; borrowed when nothing changed.
pub fn secrets(text: &str) -> Cow<'_, str> {
    let unhexed = redact_hex_dumps(text);
    match redact_named_values(&unhexed) {
        Cow::Borrowed(_) => unhexed,
        Cow::Owned(owned) => Cow::Owned(owned),
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Replaces the values that follow a secret name and a `:` or `=`, quoted or not.
fn redact_named_values(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_word_byte(bytes[i - 1]);
        if let Some(value) = starts_word.then(|| secret_value_at(bytes, i)).flatten() {
            out.push_str(&text[copied..value.start]);
            out.push_str(REDACTED);
            copied = value.end;
            i = value.end;
        } else {
            i += 1;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The byte range of the secret value when a secret name starts at `at`.
fn secret_value_at(bytes: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let rest = &bytes[at..];
    let name = SECRET_NAMES.iter().find(|name| {
        rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })?;
    let mut i = at + name.len();
    if bytes.get(i).copied().is_some_and(is_word_byte) {
        return None;
    }
    // The name's closing quote, plain or escaped, then the separator.
    i = skip_quote(bytes, i).map_or(i, |(_, end)| end);
    i = skip_spaces(bytes, i);
    if !matches!(bytes.get(i), Some(b':' | b'=')) {
        return None;
    }
    i = skip_spaces(bytes, i + 1);
    let value = match skip_quote(bytes, i) {
        Some((quote, start)) => {
            let len = bytes[start..]
                .windows(quote.len())
                .position(|w| w == quote)
                .unwrap_or(bytes.len() - start);
            start..start + len
        }
        None => {
            let mut end = unquoted_end(bytes, i);
            // `Authorization: Bearer <credential>`: the credential is the word after the scheme.
            let scheme = &bytes[i..end];
            if (scheme.eq_ignore_ascii_case(b"bearer") || scheme.eq_ignore_ascii_case(b"basic"))
                && bytes.get(end) == Some(&b' ')
            {
                end = unquoted_end(bytes, end + 1);
            }
            i..end
        }
    };
    (!value.is_empty()).then_some(value)
}

/// A quote at `at` (`"`, `\"` or `'`): the quote and the index after it.
fn skip_quote(bytes: &[u8], at: usize) -> Option<(&'static [u8], usize)> {
    let rest = &bytes[at.min(bytes.len())..];
    [&b"\\\""[..], b"\"", b"'"]
        .into_iter()
        .find(|q| rest.starts_with(q))
        .map(|q| (q, at + q.len()))
}

fn skip_spaces(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// Where an unquoted value ends: at whitespace, a quote, an escape, or a delimiter of the text around it.
fn unquoted_end(bytes: &[u8], from: usize) -> usize {
    let len = bytes[from..]
        .iter()
        .position(|&b| {
            b.is_ascii_whitespace()
                || matches!(
                    b,
                    b',' | b';' | b'&' | b'}' | b')' | b']' | b'"' | b'\'' | b'\\'
                )
        })
        .unwrap_or(bytes.len() - from);
    from + len
}

/// Hex dumps (`0x7b22...`) of text with secrets in it are redacted inside and dumped again.
fn redact_hex_dumps(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while let Some(found) = text[i..].find("0x") {
        let start = i + found + 2;
        let len = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(bytes.len() - start);
        let end = start + len;
        i = end;
        if len < MIN_HEX_DUMP || len % 2 != 0 {
            continue;
        }
        let Some(decoded) = decode_hex(&text[start..end]) else {
            continue;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            continue;
        };
        if let Cow::Owned(redacted) = redact_named_values(&decoded) {
            out.push_str(&text[copied..start]);
            for byte in redacted.bytes() {
                let _ = write!(out, "{byte:02x}");
            }
            copied = end;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "04AAAAAGVT/xAADDAxMjM0NTY3ODlhYgB9Cyp4BFmXo9vH6W6l6qsg+==";
    const SIG: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn login_json() -> String {
        format!(
            r#"{{"type":"login","credentials":{{"kind":"token","token":"{TOKEN}"}},"token_expire_time":5}}"#
        )
    }

    #[test]
    fn json_and_escaped_json_lose_their_secrets_and_keep_the_rest() {
        let json = login_json();
        let redacted = secrets(&json);
        assert_eq!(
            redacted,
            r#"{"type":"login","credentials":{"kind":"token","token":"<redacted>"},"token_expire_time":5}"#
        );
        // A Debug string of the frame bytes escapes the quotes.
        let debug = format!("payload: b{:?}", json);
        let redacted = secrets(&debug);
        assert!(!redacted.contains(TOKEN), "{redacted}");
        assert!(redacted.contains(r#"\"kind\":\"token\""#), "{redacted}");
        let sign =
            format!(r#"{{"kind":"app_sign","timestamp_ms":1,"nonce":"n","signature":"{SIG}"}}"#);
        assert!(!secrets(&sign).contains(SIG));
        assert!(secrets(&sign).contains(r#""nonce":"n""#));
    }

    #[test]
    fn debug_fields_and_headers_lose_their_secrets() {
        for line in [
            format!("Token {{ token: \"{TOKEN}\" }}"),
            format!("login token={TOKEN} user=u"),
            format!("AppSign {{ signature: \"{SIG}\", nonce: \"n\" }}"),
            format!("Authorization: Bearer {TOKEN}"),
            format!("a=ice-pwd:{SIG}\r\n"),
            format!("app_sign: '{SIG}'"),
        ] {
            let redacted = secrets(&line);
            assert!(
                !redacted.contains(TOKEN) && !redacted.contains(SIG),
                "{redacted}"
            );
            assert!(redacted.contains(REDACTED), "{redacted}");
        }
    }

    #[test]
    fn hex_dumps_of_frames_are_redacted_inside() {
        let hex: String = login_json().bytes().map(|b| format!("{b:02x}")).collect();
        let line = format!("writing frame\n<FRAME>\npayload: 0x{hex}\n");
        let redacted = secrets(&line);
        let dumped = redacted.split("0x").nth(1).unwrap().trim_end();
        let text = String::from_utf8(decode_hex(dumped).unwrap()).unwrap();
        assert_eq!(text, secrets(&login_json()));
    }

    #[test]
    fn lines_without_secrets_are_borrowed_unchanged() {
        for line in [
            "logged in room_id=r1 user_id=u",
            r#"{"kind":"token","token":""}"#,
            "token_expire_time=5 renew_token=ok",
            "payload: 0x0102",
            "token",
            "secret:",
        ] {
            assert!(matches!(secrets(line), Cow::Borrowed(_)), "{line}");
        }
    }
}
