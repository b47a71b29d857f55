//! Who may import whom (docs/design.md, "The structure"): every `crate::<module>` path in the
//! non-test code of `src/` must be one its layer allows. A new dependency upward fails here with
//! the file that made it, so the layering is kept by the suite, not by memory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and the top-level modules its non-test code may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("profile", &[]),
    ("backoff", &[]),
    ("state_file", &[]),
    ("timer", &[]),
    ("markup", &[]),
    ("panics", &[]),
    ("http_client", &[]),
    ("discover", &[]),
    ("demo_broker", &[]),
    ("quality", &["profile"]),
    ("record", &["profile", "protocol"]),
    ("transport", &["protocol", "backoff", "state_file", "timer"]),
    ("writes", &["profile", "protocol", "transport"]),
    (
        "poller",
        &["profile", "protocol", "quality", "transport", "config", "writes", "record", "state_file", "timer"],
    ),
    ("sim", &["profile", "protocol", "poller", "discover", "record"]),
    ("config", &["profile", "transport", "mqtt", "writes"]),
    ("report", &["poller", "profile"]),
    ("mqtt", &["config", "poller", "profile", "quality", "transport", "backoff", "state_file", "writes"]),
    ("weather", &["config", "backoff", "http_client", "mqtt"]),
    ("control", &["config", "poller", "profile", "state_file", "mqtt", "weather"]),
    (
        "sinks",
        &["config", "poller", "profile", "quality", "backoff", "http_client", "weather", "control", "writes"],
    ),
    (
        "web",
        &["config", "poller", "profile", "quality", "sinks", "weather", "control", "state_file", "markup"],
    ),
    (
        "replay",
        &["config", "mqtt", "poller", "profile", "protocol", "record", "service", "transport", "markup"],
    ),
];

/// The Rust files of `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a file without its test module: test files and everything from the first
/// `#[cfg(test)]` on (the house style keeps the test module last). Tests may use fixtures from
/// anywhere, `sim` especially.
fn non_test_code(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name == "golden.rs" || path.components().any(|c| c.as_os_str() == "tests") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

/// The top-level modules a piece of code names as `crate::<module>`.
fn named_modules(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn each_module_imports_only_what_its_layer_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for path in rust_files(&src) {
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if ["lib", "main", "service"].contains(&top) {
            continue; // the wiring and the CLI may use everything
        }
        let Some((_, allowed)) = ALLOWED.iter().find(|(module, _)| *module == top) else {
            problems
                .push(format!("{}: module `{top}` has no layer in tests/it/layers.rs", relative.display()));
            continue;
        };
        for named in named_modules(&non_test_code(&path)) {
            if named != top && !allowed.contains(&named.as_str()) {
                problems.push(format!("{}: `{top}` may not import `crate::{named}`", relative.display()));
            }
        }
    }
    assert!(problems.is_empty(), "imports against docs/design.md's layers:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_an_import_it_forbids() {
    let code = "use crate::mqtt::topics::Topics;\nfn f() { crate::web::probe(); }";
    let named = named_modules(code);
    assert_eq!(named.into_iter().collect::<Vec<_>>(), ["mqtt", "web"]);
}
