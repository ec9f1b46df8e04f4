//! The C ABI as data: every `#[no_mangle] extern "C"` function, callback type, `#[repr(C)]` struct and C enum of
//! `src/ffi`, read with `syn`. Everything the generators emit comes from here, so the bindings cannot drift from
//! the Rust definitions that cbindgen turns into the header.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use syn::{
    Attribute, Expr, Fields, FnArg, GenericArgument, Item, Lit, Pat, PathArguments, ReturnType,
    Type,
};

/// A primitive C type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    Bool,
    I16,
    /// `int32_t`: enum values, channels, formats.
    I32,
    /// `int`: error codes and sequence numbers.
    CInt,
    U8,
    U32,
    U64,
    Usize,
    F64,
    CChar,
    CVoid,
}

/// A C type as the Rust definitions spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Void,
    Prim(Prim),
    /// A struct, a callback type, or an alias such as `zego_engine`.
    Named(String),
    Ptr {
        mutable: bool,
        to: Box<Ty>,
    },
    Array(Box<Ty>, usize),
}

impl Ty {
    pub fn is_c_string(&self) -> bool {
        matches!(self, Ty::Ptr { mutable: false, to } if **to == Ty::Prim(Prim::CChar))
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Void => write!(f, "()"),
            Ty::Prim(p) => write!(f, "{p:?}"),
            Ty::Named(n) => write!(f, "{n}"),
            Ty::Ptr { mutable, to } => {
                write!(f, "*{} {to}", if *mutable { "mut" } else { "const" })
            }
            Ty::Array(t, n) => write!(f, "[{t}; {n}]"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    pub docs: Vec<String>,
}

/// An exported function.
#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub docs: Vec<String>,
    pub params: Vec<Param>,
    pub ret: Ty,
}

/// A callback type: `pub type zego_func_x = Option<unsafe extern "C" fn(..)>`.
#[derive(Clone, Debug)]
pub struct Callback {
    pub name: String,
    pub docs: Vec<String>,
    pub params: Vec<Param>,
}

#[derive(Clone, Debug)]
pub struct Struct {
    pub name: String,
    pub docs: Vec<String>,
    pub fields: Vec<Param>,
}

#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub value: i64,
    pub docs: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Enum {
    pub name: String,
    pub docs: Vec<String>,
    pub variants: Vec<Variant>,
}

/// The whole C ABI, in file order (files sorted by name) and declaration order within a file.
#[derive(Debug, Default)]
pub struct Model {
    pub functions: Vec<Function>,
    pub callbacks: Vec<Callback>,
    pub structs: Vec<Struct>,
    pub enums: Vec<Enum>,
    /// Plain aliases such as `zego_engine = u64`.
    pub aliases: BTreeMap<String, Ty>,
}

impl Model {
    /// Reads every `.rs` file directly in `dir` (src/ffi).
    pub fn load(dir: &Path) -> Result<Model, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
            .collect();
        files.sort();
        let mut model = Model::default();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            model
                .collect(&ast.items)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
        model.check()?;
        Ok(model)
    }

    fn collect(&mut self, items: &[Item]) -> Result<(), String> {
        for item in items {
            match item {
                Item::Fn(f) if is_exported(f) => {
                    let name = f.sig.ident.to_string();
                    let params = f
                        .sig
                        .inputs
                        .iter()
                        .map(|arg| match arg {
                            FnArg::Typed(pt) => Ok(Param {
                                name: pat_name(&pt.pat)?,
                                ty: ty(&pt.ty)?,
                                docs: Vec::new(),
                            }),
                            FnArg::Receiver(_) => Err(format!("{name}: receiver in an extern fn")),
                        })
                        .collect::<Result<_, _>>()?;
                    let ret = match &f.sig.output {
                        ReturnType::Default => Ty::Void,
                        ReturnType::Type(_, t) => ty(t)?,
                    };
                    self.functions.push(Function {
                        name,
                        docs: docs(&f.attrs),
                        params,
                        ret,
                    });
                }
                Item::Type(t) if matches!(t.vis, syn::Visibility::Public(_)) => {
                    let name = t.ident.to_string();
                    match callback_params(&t.ty)? {
                        Some(params) => self.callbacks.push(Callback {
                            name,
                            docs: docs(&t.attrs),
                            params,
                        }),
                        None => {
                            self.aliases.insert(name, ty(&t.ty)?);
                        }
                    }
                }
                Item::Struct(s) if has_repr(&s.attrs, "C") => {
                    let Fields::Named(named) = &s.fields else {
                        return Err(format!(
                            "{}: only structs with named fields are supported",
                            s.ident
                        ));
                    };
                    let fields = named
                        .named
                        .iter()
                        .map(|field| {
                            Ok(Param {
                                name: field
                                    .ident
                                    .as_ref()
                                    .map(ToString::to_string)
                                    .unwrap_or_default(),
                                ty: ty(&field.ty)?,
                                docs: docs(&field.attrs),
                            })
                        })
                        .collect::<Result<_, String>>()?;
                    self.structs.push(Struct {
                        name: s.ident.to_string(),
                        docs: docs(&s.attrs),
                        fields,
                    });
                }
                Item::Enum(e) if has_repr(&e.attrs, "i32") => {
                    let variants = e
                        .variants
                        .iter()
                        .map(|v| {
                            let value = match &v.discriminant {
                                Some((_, expr)) => int_expr(expr)?,
                                None => {
                                    return Err(format!(
                                        "{}::{}: give every variant its value",
                                        e.ident, v.ident
                                    ))
                                }
                            };
                            Ok(Variant {
                                name: v.ident.to_string(),
                                value,
                                docs: docs(&v.attrs),
                            })
                        })
                        .collect::<Result<_, String>>()?;
                    self.enums.push(Enum {
                        name: e.ident.to_string(),
                        docs: docs(&e.attrs),
                        variants,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every named type is known, so the generators never meet a name they cannot map.
    fn check(&self) -> Result<(), String> {
        let known = |name: &str| {
            self.structs.iter().any(|s| s.name == name)
                || self.callbacks.iter().any(|c| c.name == name)
                || self.aliases.contains_key(name)
        };
        fn names(ty: &Ty, out: &mut Vec<String>) {
            match ty {
                Ty::Named(n) => out.push(n.clone()),
                Ty::Ptr { to, .. } | Ty::Array(to, _) => names(to, out),
                _ => {}
            }
        }
        let mut used = Vec::new();
        for f in &self.functions {
            f.params.iter().for_each(|p| names(&p.ty, &mut used));
            names(&f.ret, &mut used);
        }
        for c in &self.callbacks {
            c.params.iter().for_each(|p| names(&p.ty, &mut used));
        }
        for s in &self.structs {
            s.fields.iter().for_each(|p| names(&p.ty, &mut used));
        }
        match used.iter().find(|n| !known(n)) {
            Some(unknown) => Err(format!(
                "type `{unknown}` is used by the C ABI but not defined in src/ffi"
            )),
            None if self.functions.is_empty() => Err("no exported functions found".into()),
            None => Ok(()),
        }
    }

    pub fn strukt(&self, name: &str) -> Option<&Struct> {
        self.structs.iter().find(|s| s.name == name)
    }

    pub fn callback(&self, name: &str) -> Option<&Callback> {
        self.callbacks.iter().find(|c| c.name == name)
    }

    pub fn enm(&self, name: &str) -> Option<&Enum> {
        self.enums.iter().find(|e| e.name == name)
    }

    /// `ty` with aliases replaced by what they stand for.
    pub fn resolve(&self, ty: &Ty) -> Ty {
        match ty {
            Ty::Named(n) => match self.aliases.get(n) {
                Some(t) => self.resolve(t),
                None => ty.clone(),
            },
            Ty::Ptr { mutable, to } => Ty::Ptr {
                mutable: *mutable,
                to: Box::new(self.resolve(to)),
            },
            Ty::Array(t, n) => Ty::Array(Box::new(self.resolve(t)), *n),
            _ => ty.clone(),
        }
    }

    /// The C enum an `int32_t` parameter or field holds, found from names and docs:
    /// a field documented as "A `zego_x` value"; an enum named after the parameter (`update_type`); the enum the
    /// callback is named after (`state` in `zego_func_room_state_update` is a `zego_room_state`); the callback's
    /// own enum (`reason` in `zego_func_room_state_changed`); and `channel`, always a `zego_publish_channel`.
    pub fn enum_of(&self, context: &str, param: &Param) -> Option<&Enum> {
        if param.ty != Ty::Prim(Prim::I32) {
            return None;
        }
        let doc = param.docs.join(" ");
        if let Some(start) = doc.find("A `zego_") {
            let rest = &doc[start + 3..];
            if let Some(end) = rest.find('`') {
                if rest[end..].starts_with("` value") {
                    return self.enm(&rest[..end]);
                }
            }
        }
        let stem = context
            .strip_prefix("zego_func_")
            .or_else(|| context.strip_prefix("zego_"))
            .unwrap_or(context);
        let p = param.name.as_str();
        let mut candidates = vec![format!("zego_{p}")];
        if let Some(at) = stem.find(p) {
            candidates.push(format!("zego_{}", &stem[..at + p.len()]));
        }
        candidates.push(format!("zego_{stem}_{p}"));
        if p == "channel" {
            candidates.push("zego_publish_channel".into());
        }
        candidates.iter().find_map(|name| self.enm(name))
    }
}

fn is_exported(f: &syn::ItemFn) -> bool {
    let no_mangle = f.attrs.iter().any(|a| {
        a.path().is_ident("no_mangle")
            || (a.path().is_ident("unsafe")
                && a.meta
                    .require_list()
                    .is_ok_and(|l| l.tokens.to_string() == "no_mangle"))
    });
    let extern_c = f
        .sig
        .abi
        .as_ref()
        .is_some_and(|abi| abi.name.as_ref().is_none_or(|n| n.value() == "C"));
    no_mangle && extern_c && matches!(f.vis, syn::Visibility::Public(_))
}

fn has_repr(attrs: &[Attribute], want: &str) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("repr")
            && a.parse_args_with(
                syn::punctuated::Punctuated::<syn::Ident, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|list| list.iter().any(|i| i == want))
    })
}

/// The `///` lines, each without its first space.
pub fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => {
                    let line = s.value();
                    Some(
                        line.strip_prefix(' ')
                            .unwrap_or(&line)
                            .trim_end()
                            .to_owned(),
                    )
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn pat_name(pat: &Pat) -> Result<String, String> {
    match pat {
        Pat::Ident(i) => Ok(i.ident.to_string()),
        Pat::Wild(_) => Ok("_".into()),
        other => Err(format!(
            "unsupported parameter pattern {}",
            quote_pat(other)
        )),
    }
}

fn quote_pat(_: &Pat) -> &'static str {
    "(not a plain name)"
}

fn int_expr(expr: &Expr) -> Result<i64, String> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse().map_err(|e| e.to_string()),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => Ok(-int_expr(expr)?),
        _ => Err("enum values must be integer literals".into()),
    }
}

/// The parameters of `Option<unsafe extern "C" fn(..)>`, or `None` when `t` is not a callback type.
fn callback_params(t: &Type) -> Result<Option<Vec<Param>>, String> {
    let Type::Path(p) = t else { return Ok(None) };
    let Some(last) = p.path.segments.last() else {
        return Ok(None);
    };
    if last.ident != "Option" {
        return Ok(None);
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Ok(None);
    };
    let Some(GenericArgument::Type(Type::BareFn(f))) = args.args.first() else {
        return Ok(None);
    };
    if !matches!(f.output, ReturnType::Default) {
        return Err("callbacks must return nothing".into());
    }
    f.inputs
        .iter()
        .map(|arg| {
            let name = arg
                .name
                .as_ref()
                .map(|(i, _)| i.to_string())
                .ok_or("name every callback parameter")?;
            Ok(Param {
                name,
                ty: ty(&arg.ty)?,
                docs: Vec::new(),
            })
        })
        .collect::<Result<_, String>>()
        .map(Some)
}

fn ty(t: &Type) -> Result<Ty, String> {
    match t {
        Type::Ptr(p) => Ok(Ty::Ptr {
            mutable: p.mutability.is_some(),
            to: Box::new(ty(&p.elem)?),
        }),
        Type::Array(a) => {
            let Expr::Lit(syn::ExprLit {
                lit: Lit::Int(n), ..
            }) = &a.len
            else {
                return Err("array lengths must be literals".into());
            };
            Ok(Ty::Array(
                Box::new(ty(&a.elem)?),
                n.base10_parse().map_err(|e| e.to_string())?,
            ))
        }
        Type::Tuple(tuple) if tuple.elems.is_empty() => Ok(Ty::Void),
        Type::Path(p) => {
            let last = p.path.segments.last().ok_or("empty type path")?;
            let name = last.ident.to_string();
            Ok(match name.as_str() {
                "bool" => Ty::Prim(Prim::Bool),
                "i16" => Ty::Prim(Prim::I16),
                "i32" => Ty::Prim(Prim::I32),
                "c_int" => Ty::Prim(Prim::CInt),
                "u8" => Ty::Prim(Prim::U8),
                "u32" => Ty::Prim(Prim::U32),
                "u64" => Ty::Prim(Prim::U64),
                "usize" => Ty::Prim(Prim::Usize),
                "f64" => Ty::Prim(Prim::F64),
                "c_char" => Ty::Prim(Prim::CChar),
                "c_void" => Ty::Prim(Prim::CVoid),
                other if other.starts_with("zego_") => Ty::Named(name),
                other => {
                    return Err(format!(
                        "unsupported type `{other}` in the C ABI (teach xtask/src/model.rs)"
                    ))
                }
            })
        }
        _ => Err("unsupported type form in the C ABI (teach xtask/src/model.rs)".into()),
    }
}
