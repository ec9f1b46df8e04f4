//! docs/tuning.md names constants, where they are and their values: each row must match the code, so the table
//! cannot drift from the constants it explains.

use std::path::Path;

#[test]
fn every_tuned_constant_has_the_value_the_table_gives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = std::fs::read_to_string(root.join("docs/tuning.md")).unwrap();
    let mut rows = 0;
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let unquote = |cell: &str| cell.trim_matches('`').to_owned();
        let (name, file, value) = (unquote(cells[1]), unquote(cells[2]), unquote(cells[3]));
        let source = std::fs::read_to_string(root.join(&file))
            .unwrap_or_else(|e| panic!("{name}: cannot read {file}: {e}"));
        let defined = source.lines().any(|l| {
            let l = l.trim_start();
            let l = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
                .unwrap_or(l);
            l.strip_prefix("const ")
                .and_then(|rest| rest.strip_prefix(name.as_str()))
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(_, v)| v.trim().trim_end_matches(';') == value)
        });
        assert!(defined, "{file} does not define {name} = {value}");
        rows += 1;
    }
    assert!(rows >= 70, "the table has {rows} rows");
}
