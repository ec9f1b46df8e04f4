//! The error code table of `crates/zego-protocol/src/error.rs` (the `error_table!` invocation), so every
//! language names the codes the SDK returns.

use std::path::Path;

use syn::parse::{Parse, ParseStream};
use syn::{Ident, Item, LitInt, LitStr, Token};

#[derive(Clone, Debug)]
pub struct ErrorCode {
    pub name: String,
    pub code: u32,
    pub message: String,
}

struct Table(Vec<ErrorCode>);

impl Parse for Table {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut codes = Vec::new();
        while !input.is_empty() {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let code: LitInt = input.parse()?;
            input.parse::<Token![,]>()?;
            let message: LitStr = input.parse()?;
            input.parse::<Token![;]>()?;
            codes.push(ErrorCode {
                name: name.to_string(),
                code: code.base10_parse()?,
                message: message.value(),
            });
        }
        Ok(Table(codes))
    }
}

pub fn load(path: &Path) -> Result<Vec<ErrorCode>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for item in ast.items {
        if let Item::Macro(m) = item {
            if m.mac.path.is_ident("error_table") {
                let Table(codes) = m
                    .mac
                    .parse_body()
                    .map_err(|e| format!("{}: error_table!: {e}", path.display()))?;
                return Ok(codes);
            }
        }
    }
    Err(format!("{}: no error_table! invocation", path.display()))
}
