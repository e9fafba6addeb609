//! Builds the list of files `gridhub` carries inside itself (src/bundled.rs):
//! the connectors, the schemas and the routing rules of this checkout, so
//! that `gridhub demo`, `check` and `validate` run from any directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Folders carried whole, and single files, relative to the manifest.
const FOLDERS: [&str; 2] = ["connectors", "schemas"];
const FILES: [&str; 5] = [
    "deploy/routing.toml",
    "deploy/calendar.toml",
    "deploy/assessment.toml",
    "deploy/open311.toml",
    "deploy/dev/demo-assessment.toml",
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for folder in FOLDERS {
        // A folder makes cargo look at every file under it.
        println!("cargo:rerun-if-changed={folder}");
        walk(&root.join(folder), &mut files);
    }
    for file in FILES {
        println!("cargo:rerun-if-changed={file}");
        files.push(root.join(file));
    }
    files.sort();
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the manifest");
        let name = relative
            .to_str()
            .expect("a UTF-8 file name")
            .replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("bundled.rs");
    std::fs::write(&out, code).expect("write bundled.rs");
}

/// Every file under `dir`, hidden ones (editors' leftovers) left out.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
