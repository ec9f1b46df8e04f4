//! The panic boundary every `extern "C"` body sits in: a panic never unwinds into C. It becomes
//! `ZEGO_ERROR_ENGINE_INNER_ERROR` for functions that return a code, or null / 0 for the others, and is logged.

use std::any::Any;
use std::ffi::{c_char, c_int};

use zego_protocol::error;

/// What an `extern "C"` function returns when its body panicked.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for c_int {
    fn panic_value() -> Self {
        error::ENGINE_INNER_ERROR as c_int
    }
}

impl PanicValue for *const c_char {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

/// Logs a caught panic with its message.
pub(crate) fn report_panic(function: &str, payload: Box<dyn Any + Send>) {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(function, "internal error (panic): {text}");
}

/// Runs the body of an `extern "C"` function, turning a panic into the function's panic value.
/// `return` inside the body returns from the function, as in rustls-ffi's `ffi_panic_boundary!`.
macro_rules! ffi_panic_boundary {
    ($function:literal, $($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::panic::report_panic($function, payload);
                $crate::ffi::panic::PanicValue::panic_value()
            }
        }
    };
}

pub(crate) use ffi_panic_boundary;

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn panics_with_a_code() -> c_int {
        ffi_panic_boundary!("panics_with_a_code", {
            let empty: Vec<u8> = Vec::new();
            c_int::from(empty[3])
        })
    }

    extern "C" fn panics_with_a_pointer() -> *const c_char {
        ffi_panic_boundary!("panics_with_a_pointer", {
            panic!("boom");
        })
    }

    #[test]
    fn a_panic_becomes_the_inner_error_code_or_null() {
        assert_eq!(panics_with_a_code(), error::ENGINE_INNER_ERROR as c_int);
        assert!(panics_with_a_pointer().is_null());
    }
}
