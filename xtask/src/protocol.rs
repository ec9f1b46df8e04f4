//! The protocol constants besides error codes, read from `crates/zego-protocol` with `syn`: the limits of
//! limits.rs, the code points user names refuse (validate.rs) and the protocol version (message.rs), so the web
//! SDK checks inputs with exactly the server's numbers.

use std::path::Path;

use syn::{BinOp, Expr, Item, Lit, Stmt};

use crate::model::docs;

/// One limit: a count or a size, or a duration in milliseconds (its name then ends in `_MS`).
#[derive(Clone, Debug)]
pub struct Limit {
    pub name: String,
    pub value: u64,
    pub docs: Vec<String>,
}

fn parse_file(path: &Path) -> Result<syn::File, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    syn::parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A constant integer expression: literals, `*`, `+`, parentheses. Durations (`Duration::from_secs(..)`,
/// `Duration::from_millis(..)`) come back in milliseconds with `true`.
fn eval(expr: &Expr) -> Result<(u64, bool), String> {
    let plain = |e: &Expr| -> Result<u64, String> {
        match eval(e)? {
            (v, false) => Ok(v),
            (_, true) => Err("a duration inside arithmetic".into()),
        }
    };
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => Ok((i.base10_parse().map_err(|e| e.to_string())?, false)),
        Expr::Paren(p) => eval(&p.expr),
        Expr::Binary(b) => {
            let (l, r) = (plain(&b.left)?, plain(&b.right)?);
            match b.op {
                BinOp::Mul(_) => Ok((l * r, false)),
                BinOp::Add(_) => Ok((l + r, false)),
                _ => Err("an operator other than * and +".into()),
            }
        }
        Expr::Call(call) => {
            let Expr::Path(func) = &*call.func else {
                return Err("a call of something other than a path".into());
            };
            let name = func
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let [arg] = call.args.iter().collect::<Vec<_>>()[..] else {
                return Err(format!("{name} with other than one argument"));
            };
            let v = plain(arg)?;
            match name.as_str() {
                "from_secs" => Ok((v * 1000, true)),
                "from_millis" => Ok((v, true)),
                _ => Err(format!("a call of {name}")),
            }
        }
        _ => Err("an expression that is not a constant".into()),
    }
}

/// Every `pub const` of limits.rs, in file order.
pub fn limits(path: &Path) -> Result<Vec<Limit>, String> {
    let mut out = Vec::new();
    for item in parse_file(path)?.items {
        let Item::Const(c) = item else { continue };
        if !matches!(c.vis, syn::Visibility::Public(_)) {
            continue;
        }
        let (value, duration) =
            eval(&c.expr).map_err(|e| format!("{}: {}: {e}", path.display(), c.ident))?;
        let name = c.ident.to_string();
        out.push(Limit {
            name: if duration { format!("{name}_MS") } else { name },
            value,
            docs: docs(&c.attrs),
        });
    }
    if out.is_empty() {
        return Err(format!("{}: no limits found", path.display()));
    }
    Ok(out)
}

/// The `[first, last]` code point ranges of the `FORMAT` table inside validate.rs's `is_format`.
pub fn user_name_format_ranges(path: &Path) -> Result<Vec<(u32, u32)>, String> {
    for item in parse_file(path)?.items {
        let Item::Fn(f) = item else { continue };
        if f.sig.ident != "is_format" {
            continue;
        }
        for stmt in &f.block.stmts {
            let Stmt::Item(Item::Const(c)) = stmt else {
                continue;
            };
            if c.ident != "FORMAT" {
                continue;
            }
            let Expr::Reference(r) = &*c.expr else {
                return Err(format!("{}: FORMAT is not `&[...]`", path.display()));
            };
            let Expr::Array(array) = &*r.expr else {
                return Err(format!("{}: FORMAT is not `&[...]`", path.display()));
            };
            let mut ranges = Vec::new();
            for elem in &array.elems {
                let Expr::Tuple(t) = elem else {
                    return Err(format!("{}: a FORMAT entry is not a pair", path.display()));
                };
                let [first, last] = t.elems.iter().collect::<Vec<_>>()[..] else {
                    return Err(format!("{}: a FORMAT entry is not a pair", path.display()));
                };
                let value = |e: &Expr| -> Result<u32, String> {
                    match eval(e)? {
                        (v, false) => u32::try_from(v).map_err(|e| e.to_string()),
                        _ => Err("a duration in FORMAT".into()),
                    }
                };
                ranges.push((value(first)?, value(last)?));
            }
            return Ok(ranges);
        }
    }
    Err(format!(
        "{}: no `const FORMAT` inside `fn is_format`",
        path.display()
    ))
}

/// `PROTOCOL_VERSION` of message.rs.
pub fn protocol_version(path: &Path) -> Result<u64, String> {
    for item in parse_file(path)?.items {
        if let Item::Const(c) = item {
            if c.ident == "PROTOCOL_VERSION" {
                return eval(&c.expr)
                    .map(|(v, _)| v)
                    .map_err(|e| format!("{}: PROTOCOL_VERSION: {e}", path.display()));
            }
        }
    }
    Err(format!("{}: no PROTOCOL_VERSION", path.display()))
}
