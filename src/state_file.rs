//! Small JSON files in the data dir that must survive restarts (the discovery ledger, the load
//! control settings): written to a temporary file and renamed, so a power cut mid-write leaves
//! the old file, never half of a new one.

use std::path::Path;

use serde::Serialize;

/// Writes `value` as pretty JSON to `path`, creating its directory.
///
/// # Errors
/// The directory or the file cannot be written.
pub(crate) fn write(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(tmp, path)
}

/// As [`write`], but compact JSON: for files of many numbers (the status page's history),
/// where pretty printing would triple the bytes written.
///
/// # Errors
/// The directory or the file cannot be written.
pub(crate) fn write_compact(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value)?)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_is_replaced_whole_and_its_directory_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deeper").join("state.json");
        super::write(&path, &serde_json::json!({"a": 1})).unwrap();
        super::write(&path, &serde_json::json!({"a": 2})).unwrap();
        let read: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read["a"], 2);
        assert!(!path.with_extension("json.tmp").exists());
    }
}
