//! Every function and callback type of include/zego_express.h is reachable from every language: declared in each
//! generated layer (Python ctypes, C# P/Invoke, Kotlin natives, JNI glue) and used by each idiomatic layer.

#[path = "bindings_support/mod.rs"]
mod support;

fn read(path: &str) -> String {
    std::fs::read_to_string(support::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read_all(paths: &[&str]) -> String {
    paths.iter().map(|p| read(p)).collect::<Vec<_>>().join("\n")
}

/// Asserts `found(item)` for every item, listing all the misses at once.
fn check_all(what: &str, items: &[String], found: impl Fn(&str) -> bool) {
    let missing: Vec<&String> = items.iter().filter(|i| !found(i)).collect();
    assert!(missing.is_empty(), "{what}: missing {missing:?}");
}

#[test]
fn every_c_function_is_declared_in_every_generated_layer() {
    let functions = support::header_functions();
    assert!(functions.len() > 30, "header functions: {functions:?}");
    let python = read("bindings/python/zego_express/_native.py");
    let csharp = read("bindings/csharp/src/NativeMethods.g.cs");
    let kotlin = read("bindings/kotlin/src/main/kotlin/zego/express/ffi/Native.g.kt");
    let jni = read("src/jni/generated.rs");
    check_all("Python ctypes prototypes", &functions, |f| {
        python.contains(&format!("\"{f}\": ("))
    });
    check_all("C# P/Invoke declarations", &functions, |f| {
        csharp.contains(&format!("EntryPoint = \"{f}\""))
    });
    check_all("Kotlin natives", &functions, |f| {
        kotlin.contains(&format!("external fun {f}("))
    });
    check_all("JNI glue", &functions, |f| {
        jni.contains(&format!("fn {}<", support::jni_symbol(f)))
    });
}

#[test]
fn every_c_function_is_used_by_every_idiomatic_layer() {
    let functions = support::header_functions();
    let python = read("bindings/python/zego_express/engine.py");
    let csharp = read_all(&[
        "bindings/csharp/src/Engine.cs",
        "bindings/csharp/src/ZegoExpress.cs",
        "bindings/csharp/src/Types.g.cs",
    ]);
    let kotlin = read_all(&[
        "bindings/kotlin/src/main/kotlin/zego/express/Engine.kt",
        "bindings/kotlin/src/main/kotlin/zego/express/Errors.kt",
    ]);
    let python_callbacks = read("bindings/python/zego_express/_native.py");
    check_all("Python Engine", &functions, |f| {
        python.contains(&format!("\"{f}\"")) || python.contains(&format!(".{f}(")) || {
            // Register functions are called through the generated callback table.
            python_callbacks.contains(&format!("\"{f}\", True")) && python.contains("spec.register")
        }
    });
    check_all("C# Engine", &functions, |f| {
        csharp.contains(&format!("NativeMethods.{f}("))
    });
    check_all("Kotlin Engine", &functions, |f| {
        kotlin.contains(&format!("Native.{f}("))
    });
}

#[test]
fn every_callback_type_is_reachable_from_every_language() {
    let callbacks = support::header_callbacks();
    assert!(callbacks.len() > 20, "header callbacks: {callbacks:?}");
    let header = read("include/zego_express.h");
    let python = read("bindings/python/zego_express/_native.py");
    let csharp = read("bindings/csharp/src/Types.g.cs");
    let kotlin_native = read("bindings/kotlin/src/main/kotlin/zego/express/ffi/Native.g.kt");
    let kotlin = read_all(&[
        "bindings/kotlin/src/main/kotlin/zego/express/Engine.kt",
        "bindings/kotlin/src/main/kotlin/zego/express/Errors.kt",
    ]);
    let jni = read("src/jni/generated.rs");
    check_all("a header function registering it", &callbacks, |c| {
        header.contains(&format!("{c} callback"))
    });
    check_all("Python callback types", &callbacks, |c| {
        python.contains(&format!("{c} = ctypes.CFUNCTYPE"))
            && python.contains(&format!(
                "\"{}\": CallbackSpec(",
                c.trim_start_matches("zego_func_")
            ))
    });
    check_all("C# events", &callbacks, |c| {
        let name = support::pascal_of_callback(c);
        csharp.contains(&format!("class {name}EventArgs"))
            && csharp.contains(&format!("event EventHandler<{name}EventArgs> {name}"))
    });
    check_all("Kotlin listener interfaces", &callbacks, |c| {
        kotlin_native.contains(&format!(
            "interface {}Callback",
            support::pascal_of_callback(c)
        ))
    });
    check_all("Kotlin Engine", &callbacks, |c| {
        kotlin.contains(&format!("{}Callback {{", support::pascal_of_callback(c)))
    });
    check_all("JNI trampolines", &callbacks, |c| {
        jni.contains(&format!("fn on_{c}("))
    });
}
