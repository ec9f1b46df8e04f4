//! Turning C arguments into Rust values, in one place: null pointers, UTF-8, IDs and out-parameters each get the
//! reference's error code here instead of being dereferenced ad hoc (like rustls-ffi's `try_ref_from_ptr!`).
//!
//! Every function here trusts one thing only: that a non-null pointer points to what the C signature says, for the
//! duration of the call. That is the contract of the whole C API.

use std::ffi::{c_char, c_int, CStr};
use std::ptr::NonNull;

use zego_protocol::error::{self, ErrorCode};
use zego_protocol::validate;

pub(crate) type Result<T> = std::result::Result<T, ErrorCode>;

/// Runs a function body that returns a result and turns it into the `int` C sees: 0 or the ZEGO error code.
pub(crate) fn code(body: impl FnOnce() -> Result<()>) -> c_int {
    match body() {
        Ok(()) => 0,
        Err(code) => {
            tracing::debug!(code, "{}", error::message(code));
            code as c_int
        }
    }
}

/// Runs the body of an `extern "C"` function that returns a ZEGO code: inside the panic boundary, with `?` on
/// `Result<(), ErrorCode>`.
macro_rules! ffi_code {
    ($function:literal, $($body:tt)*) => {
        $crate::ffi::panic::ffi_panic_boundary!($function, {
            $crate::ffi::input::code(|| { $($body)* })
        })
    };
}

pub(crate) use ffi_code;

/// A reference to a struct argument; `null` is the code for a null pointer.
///
/// # Safety
/// `ptr` is null or points to a valid `T` that outlives the returned reference.
pub(crate) unsafe fn reference<'a, T>(ptr: *const T, null: ErrorCode) -> Result<&'a T> {
    unsafe { ptr.as_ref() }.ok_or(null)
}

/// A struct argument that may be null (then `None`).
///
/// # Safety
/// As [`reference`].
pub(crate) unsafe fn optional_reference<'a, T>(ptr: *const T) -> Option<&'a T> {
    unsafe { ptr.as_ref() }
}

/// A borrowed C string as UTF-8; `null` for a null pointer, `bad` when it is not UTF-8.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that outlives the returned reference.
pub(crate) unsafe fn text<'a>(
    ptr: *const c_char,
    null: ErrorCode,
    bad: ErrorCode,
) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null);
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|_| bad)
}

/// A C string that may be null (then `None`); `bad` when it is not UTF-8.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn optional_text<'a>(
    ptr: *const c_char,
    bad: ErrorCode,
) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    unsafe { text(ptr, bad, bad) }.map(Some)
}

/// `count` elements at `ptr`; a null `ptr` is accepted only with `count == 0`.
///
/// # Safety
/// `ptr` is null or points to `count` valid elements that outlive the returned slice.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, count: usize, null: ErrorCode) -> Result<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null);
    }
    if count
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(error::COMMON_INVALID_PARAMETER);
    }
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// A stream_id: 1000015 null or empty, 1000016 not printable ASCII, 1000014 longer than 256 bytes.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn stream_id<'a>(ptr: *const c_char) -> Result<&'a str> {
    let value = unsafe {
        text(
            ptr,
            error::COMMON_STREAM_ID_NULL,
            error::COMMON_STREAM_ID_INVALID_CHARACTER,
        )
    }?;
    validate::stream_id(value)?;
    Ok(value)
}

/// A room_id: 1002011 null or empty, 1002012 not printable ASCII, 1002013 longer than 128 bytes.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn room_id<'a>(ptr: *const c_char) -> Result<&'a str> {
    let value = unsafe {
        text(
            ptr,
            error::ROOM_ROOM_ID_NULL,
            error::ROOM_ROOM_ID_INVALID_CHARACTER,
        )
    }?;
    validate::room_id(value)?;
    Ok(value)
}

/// A user_id: 1002005 null or empty, 1002006 not printable ASCII, 1002007 longer than 64 bytes.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn user_id<'a>(ptr: *const c_char) -> Result<&'a str> {
    let value = unsafe {
        text(
            ptr,
            error::ROOM_USER_ID_NULL,
            error::ROOM_USER_ID_INVALID_CHARACTER,
        )
    }?;
    validate::user_id(value)?;
    Ok(value)
}

/// A user_name: 1002008 null or empty, 1002009 not UTF-8 or with control characters, 1002010 longer than 256
/// bytes.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn user_name<'a>(ptr: *const c_char) -> Result<&'a str> {
    let value = unsafe {
        text(
            ptr,
            error::ROOM_USER_NAME_NULL,
            error::ROOM_USER_NAME_INVALID_CHARACTER,
        )
    }?;
    validate::user_name(value)?;
    Ok(value)
}

/// An out-parameter, checked for null before any work is done and written once at the end.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// 1000008 for a null pointer.
    ///
    /// # Safety
    /// `ptr` is null or points to memory writable as a `T` (possibly uninitialized) until [`Out::write`].
    pub(crate) unsafe fn new(ptr: *mut T) -> Result<Out<T>> {
        NonNull::new(ptr)
            .map(Out)
            .ok_or(error::COMMON_INVALID_PARAMETER)
    }

    /// Stores the result (`write` rather than assignment: the memory may be uninitialized).
    pub(crate) fn write(self, value: T) {
        // Safety: promised by the caller of `Out::new`.
        unsafe { self.0.as_ptr().write(value) }
    }
}
