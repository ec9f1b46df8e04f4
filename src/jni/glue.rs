//! The hand-written half of the JNI layer: converting Java values to C arguments and C callback arguments to
//! Java objects, running native bodies without letting a panic or a Java error escape, and keeping the
//! listeners registered with the C API alive exactly as long as the C API may call them.
//!
//! The generated half (`generated.rs`) has one `Java_…` native per C function and one trampoline per callback
//! type, written in terms of these helpers.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use jni::objects::{
    GlobalRef, JByteArray, JIntArray, JLongArray, JMethodID, JObject, JObjectArray, JString, JValue,
};
use jni::signature::{Primitive, ReturnType};
use jni::sys::{jint, jsize, jstring, jvalue};
use jni::{JNIEnv, JavaVM};
use parking_lot::Mutex;
use zego_protocol::error;

/// Why a native body stopped early: a ZEGO code to return, or a JNI failure (usually with a Java exception
/// pending, which the caller then sees).
pub(crate) enum Failure {
    Code(c_int),
    Java(jni::errors::Error),
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        Failure::Java(e)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

const INVALID_PARAMETER: c_int = error::COMMON_INVALID_PARAMETER as c_int;
const INNER_ERROR: c_int = error::ENGINE_INNER_ERROR as c_int;

/// Runs the body of a native that returns a ZEGO code. A JNI failure leaves (or raises) a Java exception.
pub(crate) fn code<'l>(
    env: &mut JNIEnv<'l>,
    function: &str,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<c_int>,
) -> jint {
    match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(code)) | Ok(Err(Failure::Code(code))) => code,
        Ok(Err(Failure::Java(e))) => {
            raise(env, function, &e.to_string());
            INNER_ERROR
        }
        Err(_) => {
            raise(env, function, "internal error (panic)");
            INNER_ERROR
        }
    }
}

/// Runs the body of a native that returns a static C string (NULL becomes a Java null).
pub(crate) fn string<'l>(
    env: &mut JNIEnv<'l>,
    function: &str,
    body: impl FnOnce(&mut JNIEnv<'l>) -> Result<*const c_char>,
) -> jstring {
    let made = catch_unwind(AssertUnwindSafe(|| {
        let ptr = body(env)?;
        if ptr.is_null() {
            return Ok(JObject::null().into_raw());
        }
        let text = unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned();
        Ok(env.new_string(text)?.into_raw())
    }));
    match made {
        Ok(Ok(s)) => s,
        Ok(Err(Failure::Code(_))) => JObject::null().into_raw(),
        Ok(Err(Failure::Java(e))) => {
            raise(env, function, &e.to_string());
            JObject::null().into_raw()
        }
        Err(_) => {
            raise(env, function, "internal error (panic)");
            JObject::null().into_raw()
        }
    }
}

/// Throws a RuntimeException unless a Java exception is already pending (which then wins).
fn raise(env: &mut JNIEnv, function: &str, message: &str) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let _ = env.throw_new(
        "java/lang/RuntimeException",
        format!("{function}: {message}"),
    );
}

/// Owns what the C arguments of one call point into, until the call returns.
#[derive(Default)]
pub(crate) struct Keep {
    strings: Vec<CString>,
    lists: Vec<Vec<*const c_char>>,
    bytes: Vec<Vec<u8>>,
}

impl Keep {
    /// A Java string as a C string; null stays NULL. A string with a NUL inside is 1000008 (C would cut it).
    pub(crate) fn str(&mut self, env: &mut JNIEnv, s: &JString) -> Result<*const c_char> {
        if s.is_null() {
            return Ok(std::ptr::null());
        }
        let text: String = env.get_string(s)?.into();
        let c = CString::new(text).map_err(|_| Failure::Code(INVALID_PARAMETER))?;
        let ptr = c.as_ptr();
        self.strings.push(c);
        Ok(ptr)
    }

    /// A `String[]` as `const char *const *` and its count; null is (NULL, 0).
    pub(crate) fn str_list(
        &mut self,
        env: &mut JNIEnv,
        array: &JObjectArray,
    ) -> Result<(*const *const c_char, usize)> {
        if array.is_null() {
            return Ok((std::ptr::null(), 0));
        }
        let len = env.get_array_length(array)?;
        let mut pointers = Vec::with_capacity(len as usize);
        for i in 0..len {
            let item = JString::from(env.get_object_array_element(array, i)?);
            pointers.push(self.str(env, &item)?);
            env.delete_local_ref(item)?;
        }
        let ptr = pointers.as_ptr();
        let count = pointers.len();
        self.lists.push(pointers);
        Ok((ptr, count))
    }

    /// A `byte[]` copied out of the JVM, as a pointer and length; null is (NULL, 0).
    pub(crate) fn bytes(
        &mut self,
        env: &mut JNIEnv,
        array: &JByteArray,
    ) -> Result<(*const u8, usize)> {
        if array.is_null() {
            return Ok((std::ptr::null(), 0));
        }
        let data = env.convert_byte_array(array)?;
        let out = (data.as_ptr(), data.len());
        self.bytes.push(data);
        Ok(out)
    }

    /// A string field of a Java object as a C string.
    pub(crate) fn string_field(
        &mut self,
        env: &mut JNIEnv,
        obj: &JObject,
        name: &str,
    ) -> Result<*const c_char> {
        let value = JString::from(env.get_field(obj, name, "Ljava/lang/String;")?.l()?);
        let ptr = self.str(env, &value)?;
        env.delete_local_ref(value)?;
        Ok(ptr)
    }
}

/// A `long` / `jlong` that must fit a `size_t` (natives taking a `size_t` on its own).
#[allow(dead_code)]
pub(crate) fn size(value: i64) -> Result<usize> {
    usize::try_from(value).map_err(|_| Failure::Code(INVALID_PARAMETER))
}

pub(crate) fn int_field(env: &mut JNIEnv, obj: &JObject, name: &str) -> Result<i32> {
    Ok(env.get_field(obj, name, "I")?.i()?)
}

pub(crate) fn long_field(env: &mut JNIEnv, obj: &JObject, name: &str) -> Result<i64> {
    Ok(env.get_field(obj, name, "J")?.j()?)
}

pub(crate) fn bool_field(env: &mut JNIEnv, obj: &JObject, name: &str) -> Result<bool> {
    Ok(env.get_field(obj, name, "Z")?.z()?)
}

pub(crate) fn double_field(env: &mut JNIEnv, obj: &JObject, name: &str) -> Result<f64> {
    Ok(env.get_field(obj, name, "D")?.d()?)
}

/// An enum field (a generated Kotlin enum with an `int value`); null reads as 0.
pub(crate) fn enum_field(env: &mut JNIEnv, obj: &JObject, name: &str, class: &str) -> Result<i32> {
    let value = env.get_field(obj, name, format!("L{class};"))?.l()?;
    if value.is_null() {
        return Ok(0);
    }
    let raw = env.get_field(&value, "value", "I")?.i()?;
    env.delete_local_ref(value)?;
    Ok(raw)
}

/// An object field; null is 1000008 (nested structs are required).
pub(crate) fn object_field<'l>(
    env: &mut JNIEnv<'l>,
    obj: &JObject,
    name: &str,
    class: &str,
) -> Result<JObject<'l>> {
    let value = env.get_field(obj, name, format!("L{class};"))?.l()?;
    if value.is_null() {
        return Err(Failure::Code(INVALID_PARAMETER));
    }
    Ok(value)
}

/// The first `N` entries of an `int[]` field (missing entries are 0).
pub(crate) fn int_array_field<const N: usize>(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
) -> Result<[u32; N]> {
    let array = JIntArray::from(env.get_field(obj, name, "[I")?.l()?);
    let mut out = [0i32; N];
    if !array.is_null() {
        let len = (env.get_array_length(&array)? as usize).min(N);
        env.get_int_array_region(&array, 0, &mut out[..len])?;
        env.delete_local_ref(array)?;
    }
    Ok(out.map(|v| v as u32))
}

pub(crate) fn set_int_field(env: &mut JNIEnv, obj: &JObject, name: &str, value: i32) -> Result<()> {
    Ok(env.set_field(obj, name, "I", JValue::Int(value))?)
}

pub(crate) fn set_long_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    value: i64,
) -> Result<()> {
    Ok(env.set_field(obj, name, "J", JValue::Long(value))?)
}

pub(crate) fn set_bool_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    value: bool,
) -> Result<()> {
    Ok(env.set_field(obj, name, "Z", JValue::Bool(value.into()))?)
}

pub(crate) fn set_double_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    value: f64,
) -> Result<()> {
    Ok(env.set_field(obj, name, "D", JValue::Double(value))?)
}

pub(crate) fn set_string_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    value: *const c_char,
) -> Result<()> {
    let s = string_out(env, value)?;
    env.set_field(obj, name, "Ljava/lang/String;", JValue::Object(&s))?;
    Ok(env.delete_local_ref(s)?)
}

pub(crate) fn set_object_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    class: &str,
    value: JObject,
) -> Result<()> {
    env.set_field(obj, name, format!("L{class};"), JValue::Object(&value))?;
    Ok(env.delete_local_ref(value)?)
}

pub(crate) fn set_enum_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    class: &str,
    value: i32,
) -> Result<()> {
    let e = enum_value(env, class, value)?;
    set_object_field(env, obj, name, class, e)
}

pub(crate) fn set_int_array_field(
    env: &mut JNIEnv,
    obj: &JObject,
    name: &str,
    values: &[u32],
) -> Result<()> {
    let array = env.new_int_array(values.len() as jsize)?;
    let ints: Vec<i32> = values.iter().map(|v| *v as i32).collect();
    env.set_int_array_region(&array, 0, &ints)?;
    env.set_field(obj, name, "[I", JValue::Object(&array))?;
    Ok(env.delete_local_ref(array)?)
}

/// A C string for Java: NULL becomes "" (callbacks never hand Kotlin a null string).
pub(crate) fn string_out<'l>(env: &mut JNIEnv<'l>, ptr: *const c_char) -> Result<JObject<'l>> {
    let text = if ptr.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(env.new_string(text)?.into())
}

/// A new object of a generated class, through its no-argument constructor.
pub(crate) fn new_object<'l>(env: &mut JNIEnv<'l>, class: &str) -> Result<JObject<'l>> {
    let class = class_ref(env, class)?;
    Ok(env.new_object(&class, "()V", &[])?)
}

/// The member of a generated enum for `value` (`fromValue`), or its member for 0 when `value` is unknown.
pub(crate) fn enum_value<'l>(env: &mut JNIEnv<'l>, class: &str, value: i32) -> Result<JObject<'l>> {
    let class_obj = class_ref(env, class)?;
    let sig = format!("(I)L{class};");
    let found = env
        .call_static_method(&class_obj, "fromValue", &sig, &[JValue::Int(value)])?
        .l()?;
    if !found.is_null() || value == 0 {
        return Ok(found);
    }
    Ok(env
        .call_static_method(&class_obj, "fromValue", &sig, &[JValue::Int(0)])?
        .l()?)
}

/// An array of generated objects made by `make` from each index.
pub(crate) fn object_array<'l>(
    env: &mut JNIEnv<'l>,
    class: &str,
    count: usize,
    mut make: impl FnMut(&mut JNIEnv<'l>, usize) -> Result<JObject<'l>>,
) -> Result<JObject<'l>> {
    let class_obj = class_ref(env, class)?;
    let len = jsize::try_from(count).map_err(|_| Failure::Code(INVALID_PARAMETER))?;
    let array = env.new_object_array(len, &class_obj, JObject::null())?;
    for i in 0..count {
        let item = make(env, i)?;
        env.set_object_array_element(&array, i as jsize, &item)?;
        env.delete_local_ref(item)?;
    }
    Ok(array.into())
}

/// Interleaved 16-bit PCM as a `short[]` (copied).
pub(crate) fn samples<'l>(
    env: &mut JNIEnv<'l>,
    ptr: *const i16,
    count: usize,
) -> Result<JObject<'l>> {
    let slice: &[i16] = if ptr.is_null() || count == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, count) }
    };
    let array = env.new_short_array(slice.len() as jsize)?;
    env.set_short_array_region(&array, 0, slice)?;
    Ok(array.into())
}

/// Bytes of a callback as a `byte[]` (copied).
pub(crate) fn bytes<'l>(env: &mut JNIEnv<'l>, ptr: *const u8, len: usize) -> Result<JObject<'l>> {
    let slice: &[u8] = if ptr.is_null() || len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    Ok(env.byte_array_from_slice(slice)?.into())
}

/// The 4 planes of a frame callback as a `byte[][]` (copied); unused planes are null.
pub(crate) fn planes<'l>(
    env: &mut JNIEnv<'l>,
    data: *const *const u8,
    lengths: *const u32,
) -> Result<JObject<'l>> {
    const PLANES: usize = 4;
    let array = env.new_object_array(PLANES as jsize, "[B", JObject::null())?;
    if data.is_null() || lengths.is_null() {
        return Ok(array.into());
    }
    let (data, lengths) = unsafe {
        (
            std::slice::from_raw_parts(data, PLANES),
            std::slice::from_raw_parts(lengths, PLANES),
        )
    };
    for (i, (&ptr, &len)) in data.iter().zip(lengths).enumerate() {
        if ptr.is_null() || len == 0 {
            continue;
        }
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
        let plane = env.byte_array_from_slice(bytes)?;
        env.set_object_array_element(&array, i as jsize, &plane)?;
        env.delete_local_ref(plane)?;
    }
    Ok(array.into())
}

/// Writes a scalar out-parameter into element 0 of a `long[]` (ignored when null; 1000008 when empty).
pub(crate) fn write_long(env: &mut JNIEnv, array: &JLongArray, value: i64) -> Result<()> {
    if array.is_null() {
        return Ok(());
    }
    if env.get_array_length(array)? < 1 {
        return Err(Failure::Code(INVALID_PARAMETER));
    }
    Ok(env.set_long_array_region(array, 0, &[value])?)
}

/// Writes a scalar out-parameter into element 0 of an `int[]` (ignored when null; 1000008 when empty).
pub(crate) fn write_int(env: &mut JNIEnv, array: &JIntArray, value: i32) -> Result<()> {
    if array.is_null() {
        return Ok(());
    }
    if env.get_array_length(array)? < 1 {
        return Err(Failure::Code(INVALID_PARAMETER));
    }
    Ok(env.set_int_array_region(array, 0, &[value])?)
}

/// Classes looked up on a Java thread, so that callback threads (which on Android only see the system class
/// loader) can make objects of the binding's classes.
static CLASSES: Mutex<Option<HashMap<String, GlobalRef>>> = Mutex::new(None);

fn class_ref(env: &mut JNIEnv, name: &str) -> Result<GlobalRef> {
    if let Some(class) = CLASSES.lock().as_ref().and_then(|m| m.get(name)) {
        return Ok(class.clone());
    }
    let local = env.find_class(name)?;
    let global = env.new_global_ref(&local)?;
    env.delete_local_ref(local)?;
    CLASSES
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), global.clone());
    Ok(global)
}

/// Looks up every class the trampolines may need while on a Java thread (called when a listener registers).
fn preload(env: &mut JNIEnv, classes: &[&str]) -> Result<()> {
    for class in classes {
        class_ref(env, class)?;
    }
    Ok(())
}

/// A Kotlin listener object registered with the C API, with the method its trampoline calls.
pub(crate) struct Listener {
    vm: JavaVM,
    target: GlobalRef,
    method: JMethodID,
    callback: &'static str,
}

/// The registration of one listener: `None` for a Java null (which unregisters).
pub(crate) struct Registration(Option<Arc<Listener>>);

impl Registration {
    /// Wraps `target` (an instance of `interface`) for the trampoline of `callback`, whose method is
    /// `invoke` with `signature`.
    pub(crate) fn new(
        env: &mut JNIEnv,
        target: &JObject,
        callback: &'static str,
        interface: &str,
        signature: &str,
        classes: &[&str],
    ) -> Result<Registration> {
        if target.is_null() {
            return Ok(Registration(None));
        }
        preload(env, classes)?;
        let class = class_ref(env, interface)?;
        let method = env.get_method_id(&class, "invoke", signature)?;
        Ok(Registration(Some(Arc::new(Listener {
            vm: env.get_java_vm()?,
            target: env.new_global_ref(target)?,
            method,
            callback,
        }))))
    }

    /// The `user_context` for the C API: the listener, kept alive by this registration.
    pub(crate) fn context(&self) -> *mut c_void {
        self.0
            .as_ref()
            .map_or(std::ptr::null_mut(), |l| Arc::as_ptr(l) as *mut c_void)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// After the C API accepted the registration: keeps the listener until `owner` (an engine handle, or 0 for
    /// process-wide callbacks) is released. A replaced listener may still be running on the callback thread,
    /// so listeners are only ever freed with their engine.
    pub(crate) fn commit(self, owner: u64) {
        if let Some(listener) = self.0 {
            LISTENERS
                .lock()
                .get_or_insert_with(HashMap::new)
                .entry(owner)
                .or_default()
                .push(listener);
        }
    }
}

static LISTENERS: Mutex<Option<HashMap<u64, Vec<Arc<Listener>>>>> = Mutex::new(None);

/// Frees the listeners of a destroyed engine. The C API runs none of its callbacks after destroy returns; a
/// trampoline already running (destroy called from inside a callback) holds its own reference.
pub(crate) fn release(owner: u64) {
    let released = LISTENERS.lock().as_mut().and_then(|m| m.remove(&owner));
    drop(released);
}

/// Runs a trampoline body on the calling (C callback) thread: attaches it to the JVM, gives the body a local
/// frame, and logs (never propagates) a Java exception thrown by the listener. Never unwinds into C.
pub(crate) fn dispatch(
    user_context: *mut c_void,
    body: impl FnOnce(&mut JNIEnv, &Listener) -> Result<()>,
) {
    if user_context.is_null() {
        return;
    }
    // The registration keeps one reference for as long as the C API may call; this one covers the call itself.
    let listener = unsafe {
        let ptr = user_context as *const Listener;
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut env = match listener.vm.attach_current_thread_permanently() {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(
                    callback = listener.callback,
                    "cannot attach to the JVM: {e}"
                );
                return;
            }
        };
        let result: Result<()> = env.with_local_frame(32, |env| body(env, &listener));
        if let Err(Failure::Java(e)) = &result {
            if !matches!(e, jni::errors::Error::JavaException) {
                tracing::error!(callback = listener.callback, "JNI error in a callback: {e}");
            }
        }
        report_exception(&mut env, listener.callback);
    }));
    if outcome.is_err() {
        tracing::error!(
            callback = listener.callback,
            "internal error (panic) in a JNI callback"
        );
    }
}

impl Listener {
    /// Calls the listener's `invoke` with `args`, which match the signature it was registered with.
    pub(crate) fn call(&self, env: &mut JNIEnv, args: &[jvalue]) -> Result<()> {
        unsafe {
            env.call_method_unchecked(
                &self.target,
                self.method,
                ReturnType::Primitive(Primitive::Void),
                args,
            )
        }?;
        Ok(())
    }
}

/// Logs and clears a pending Java exception (a listener that threw): it must not reach the C caller.
fn report_exception(env: &mut JNIEnv, callback: &str) {
    if !env.exception_check().unwrap_or(false) {
        return;
    }
    let throwable = env.exception_occurred();
    let _ = env.exception_clear();
    let text = throwable
        .ok()
        .and_then(|t| {
            env.call_method(&t, "toString", "()Ljava/lang/String;", &[])
                .ok()
        })
        .and_then(|v| v.l().ok())
        .map(JString::from)
        .and_then(|s| env.get_string(&s).ok().map(String::from))
        .unwrap_or_else(|| "(unprintable exception)".into());
    let _ = env.exception_clear();
    tracing::error!(callback, "a listener threw: {text}");
}
