//! Turning C names into each language's conventions.

/// `zego_video_frame_param` → `VideoFrameParam` (the `zego_` / `zego_func_` prefix dropped).
pub fn type_name(c: &str) -> String {
    let stem = c
        .strip_prefix("zego_func_")
        .or_else(|| c.strip_prefix("zego_"))
        .unwrap_or(c);
    pascal(stem)
}

/// `room_state_update` → `RoomStateUpdate`; `BGRA32` → `Bgra32`.
pub fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `user_id` → `userId`.
pub fn camel(snake: &str) -> String {
    let p = pascal(snake);
    let mut chars = p.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `StreamId` → `streamId`.
pub fn lower_first(pascal: &str) -> String {
    let mut chars = pascal.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `ZEGO_ROOM_STATE_CONNECTED` of `zego_room_state` → `CONNECTED`.
pub fn variant(enum_name: &str, variant: &str) -> String {
    let prefix = format!("{}_", enum_name.to_ascii_uppercase());
    let short = variant.strip_prefix(&prefix).unwrap_or(variant);
    if short.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{short}")
    } else {
        short.to_owned()
    }
}

/// A name as the JNI spec mangles it in `Java_<class>_<method>` symbols.
pub fn jni_mangle(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            '/' | '.' => out.push('_'),
            '_' => out.push_str("_1"),
            ';' => out.push_str("_2"),
            '[' => out.push_str("_3"),
            c if c.is_ascii_alphanumeric() => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("_0{unit:04x}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(type_name("zego_video_frame_param"), "VideoFrameParam");
        assert_eq!(type_name("zego_func_room_state_update"), "RoomStateUpdate");
        assert_eq!(camel("user_id"), "userId");
        assert_eq!(pascal("BGRA32"), "Bgra32");
        assert_eq!(
            variant("zego_room_state", "ZEGO_ROOM_STATE_CONNECTED"),
            "CONNECTED"
        );
        assert_eq!(
            jni_mangle("zego/express/ffi/Native"),
            "zego_express_ffi_Native"
        );
        assert_eq!(jni_mangle("zego_login_room"), "zego_1login_1room");
    }
}
