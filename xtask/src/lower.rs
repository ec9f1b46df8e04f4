//! C parameters grouped into what they mean to a language with strings, arrays and objects: a `char **` with its
//! count is one list of strings, a callback with its `user_context` is one listener, a planes array with its
//! lengths is one list of byte buffers. The JNI glue and the Python metadata are written from these, so a new
//! C shape fails here, loudly, instead of being bound wrongly.

use crate::model::{Callback, Function, Model, Param, Prim, Ty};

/// A function parameter as the language passes it (language → C).
#[derive(Clone, Debug, PartialEq)]
pub enum In {
    /// A number or bool, by value (`zego_engine` handles are `U64`).
    Scalar(Prim),
    /// `const char *`, NULL allowed.
    Str,
    /// `const char *const *` with its `size_t` count (the named parameter).
    StrList { count: String },
    /// `const uint8_t *` with its `size_t` length.
    Bytes { len: String },
    /// `const struct *`, NULL allowed.
    Struct(String),
    /// `struct *` the function fills in.
    StructOut(String),
    /// A scalar out-parameter (`zego_engine *`, `int *`).
    ScalarOut(Prim),
    /// A callback type with the `void *user_context` after it.
    Listener { callback: String, context: String },
}

#[derive(Clone, Debug)]
pub struct InParam {
    pub name: String,
    pub kind: In,
}

/// What a function returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Ret {
    Void,
    /// `int`: 0 or a ZEGO error code.
    Code,
    /// A static `const char *`.
    StaticStr,
    Scalar(Prim),
}

/// A callback parameter as the language receives it (C → language).
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Scalar(Prim),
    Str,
    /// `const struct *` to one struct.
    Struct(String),
    /// `const struct *` with its `uint32_t` count.
    StructList {
        name: String,
        count: String,
    },
    /// `const int16_t *` samples with their count.
    Samples {
        count: String,
    },
    /// `const uint8_t *` data with its `uint32_t` length (the named parameter, ending in `_length`).
    Bytes {
        len: String,
    },
    /// `const uint8_t *const *data` with `const uint32_t *data_length`: 4 planes, unused ones NULL / 0.
    Planes {
        lengths: String,
    },
}

#[derive(Clone, Debug)]
pub struct OutParam {
    pub name: String,
    pub kind: Out,
}

pub fn function(model: &Model, f: &Function) -> Result<(Vec<InParam>, Ret), String> {
    let params: Vec<(String, Ty)> = f
        .params
        .iter()
        .map(|p| (p.name.clone(), model.resolve(&p.ty)))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < params.len() {
        let (name, ty) = &params[i];
        let next = params.get(i + 1);
        let err = || {
            format!(
                "{}: parameter `{name}: {ty}` has no binding (teach xtask/src/lower.rs)",
                f.name
            )
        };
        let kind = match ty {
            Ty::Prim(p) if *p != Prim::CVoid && *p != Prim::CChar => In::Scalar(*p),
            t if t.is_c_string() => In::Str,
            Ty::Named(n) if model.callback(n).is_some() => match next {
                Some((ctx, Ty::Ptr { mutable: true, to })) if **to == Ty::Prim(Prim::CVoid) => {
                    i += 1;
                    In::Listener {
                        callback: n.clone(),
                        context: ctx.clone(),
                    }
                }
                _ => {
                    return Err(format!(
                        "{}: callback `{name}` must be followed by `user_context: *mut c_void`",
                        f.name
                    ))
                }
            },
            Ty::Ptr { mutable: false, to } => match &**to {
                t if t.is_c_string() => match next {
                    Some((count, Ty::Prim(Prim::Usize))) => {
                        i += 1;
                        In::StrList {
                            count: count.clone(),
                        }
                    }
                    _ => return Err(err()),
                },
                Ty::Prim(Prim::U8) => match next {
                    Some((len, Ty::Prim(Prim::Usize))) => {
                        i += 1;
                        In::Bytes { len: len.clone() }
                    }
                    _ => return Err(err()),
                },
                Ty::Named(s) if model.strukt(s).is_some() => In::Struct(s.clone()),
                _ => return Err(err()),
            },
            Ty::Ptr { mutable: true, to } => match &**to {
                Ty::Named(s) if model.strukt(s).is_some() => In::StructOut(s.clone()),
                Ty::Prim(p) if *p != Prim::CVoid && *p != Prim::CChar => In::ScalarOut(*p),
                _ => return Err(err()),
            },
            _ => return Err(err()),
        };
        out.push(InParam {
            name: name.clone(),
            kind,
        });
        i += 1;
    }
    let ret = match model.resolve(&f.ret) {
        Ty::Void => Ret::Void,
        Ty::Prim(Prim::CInt) => Ret::Code,
        t if t.is_c_string() => Ret::StaticStr,
        Ty::Prim(p) if p != Prim::CVoid && p != Prim::CChar => Ret::Scalar(p),
        other => return Err(format!("{}: return type {other} has no binding", f.name)),
    };
    Ok((out, ret))
}

/// The parameters of a callback without its trailing `user_context`.
pub fn callback(model: &Model, c: &Callback) -> Result<Vec<OutParam>, String> {
    let Some((last, params)) = c.params.split_last() else {
        return Err(format!(
            "{}: callbacks take at least `user_context`",
            c.name
        ));
    };
    if model.resolve(&last.ty)
        != (Ty::Ptr {
            mutable: true,
            to: Box::new(Ty::Prim(Prim::CVoid)),
        })
    {
        return Err(format!(
            "{}: the last parameter must be `user_context: *mut c_void`",
            c.name
        ));
    }
    let params: Vec<(String, Ty)> = params
        .iter()
        .map(|p| (p.name.clone(), model.resolve(&p.ty)))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < params.len() {
        let (name, ty) = &params[i];
        let next = params.get(i + 1);
        let err = || {
            format!(
                "{}: parameter `{name}: {ty}` has no binding (teach xtask/src/lower.rs)",
                c.name
            )
        };
        let count_after = |next: Option<&(String, Ty)>| match next {
            Some((count, Ty::Prim(Prim::U32 | Prim::Usize))) if count.ends_with("_count") => {
                Some(count.clone())
            }
            _ => None,
        };
        let kind = match ty {
            Ty::Prim(p) if *p != Prim::CVoid && *p != Prim::CChar => Out::Scalar(*p),
            t if t.is_c_string() => Out::Str,
            Ty::Ptr { mutable: false, to } => match &**to {
                Ty::Named(s) if model.strukt(s).is_some() => match count_after(next) {
                    Some(count) => {
                        i += 1;
                        Out::StructList {
                            name: s.clone(),
                            count,
                        }
                    }
                    None => Out::Struct(s.clone()),
                },
                Ty::Prim(Prim::U8) => match next {
                    Some((len, Ty::Prim(Prim::U32))) if len.ends_with("_length") => {
                        i += 1;
                        Out::Bytes { len: len.clone() }
                    }
                    _ => return Err(err()),
                },
                Ty::Prim(Prim::I16) => match count_after(next) {
                    Some(count) => {
                        i += 1;
                        Out::Samples { count }
                    }
                    None => return Err(err()),
                },
                Ty::Ptr {
                    mutable: false,
                    to: inner,
                } if **inner == Ty::Prim(Prim::U8) => match next {
                    Some((lengths, Ty::Ptr { mutable: false, to }))
                        if **to == Ty::Prim(Prim::U32) =>
                    {
                        i += 1;
                        Out::Planes {
                            lengths: lengths.clone(),
                        }
                    }
                    _ => return Err(err()),
                },
                _ => return Err(err()),
            },
            _ => return Err(err()),
        };
        out.push(OutParam {
            name: name.clone(),
            kind,
        });
        i += 1;
    }
    Ok(out)
}

/// The callback parameters' C declarations (for docs and checks), without `user_context`.
pub fn callback_c_params(c: &Callback) -> &[Param] {
    &c.params[..c.params.len().saturating_sub(1)]
}
