//! `bulwark playbook validate FILE...`: checks playbook files against the built-in action
//! catalog, offline (no database, no configuration).

use bulwark_engine::playbook_dir::{format_of, parse_source};
use bulwark_playbook::Catalog;
use std::path::Path;

/// The report for `files` (one `FILE: OK (name)` line per valid file; `FILE:line: message`
/// per problem) and whether every file is valid.
pub fn validate_files<P: AsRef<Path>>(files: &[P]) -> (String, bool) {
    let catalog = Catalog::builtin();
    let mut out = String::new();
    let mut ok = true;
    for f in files {
        let path = f.as_ref();
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                ok = false;
                out.push_str(&format!("{shown}: cannot read the file: {e}\n"));
                continue;
            }
        };
        // Unknown extensions are read as YAML (JSON is YAML too).
        let format = format_of(path).unwrap_or("yaml");
        match parse_source(format, &text, &catalog) {
            Ok(pb) => out.push_str(&format!("{shown}: OK ({})\n", pb.name())),
            Err(errs) => {
                ok = false;
                out.push_str(&errs.render_for_file(&shown));
            }
        }
    }
    (out, ok)
}
