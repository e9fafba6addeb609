//! The connectors, schemas and routing rules built into the binary.
//!
//! `gridhub demo`, `check` and `validate` (and every other command) run from
//! any directory: when the settings name no connectors folder and there is
//! no `./connectors`, the hub writes the files it was built with into a
//! private temporary folder (mode 0700, removed when the command ends) and
//! reads them from there, as it would read a district's own. The loaders
//! stay the ones production uses, reading files; see docs/ARCHITECTURE.md.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod files {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Every built-in file: its path as in the repository (`connectors/...`,
/// `schemas/...`, `deploy/...`) and its bytes.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    files::FILES
}

/// Bytes of every built-in file, together.
pub fn size() -> usize {
    files().iter().map(|(_, bytes)| bytes.len()).sum()
}

/// The folders written in this process, removed by [`remove`].
static WRITTEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Writes the built-in files into a new private folder under the system's
/// temporary directory and returns it: `connectors/`, `schemas/` and
/// `deploy/` inside, laid out as in the repository.
pub fn materialise() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!(
        "gridhub-bundled-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    write_into(&base)?;
    WRITTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(base.clone());
    Ok(base)
}

/// Writes the files into `base`, which must not exist yet: it is created
/// readable by this user only, so no other user can change what the hub
/// then reads.
pub fn write_into(base: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |path: &Path, e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(base)
        .map_err(|e| fail(base, e))?;
    for (name, bytes) in files() {
        let path = base.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| fail(&path, e))?;
    }
    Ok(())
}

/// Removes the folders [`materialise`] wrote.
pub fn remove() {
    let written = std::mem::take(&mut *WRITTEN.lock().unwrap_or_else(|p| p.into_inner()));
    for dir in written {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_carries_connectors_schemas_and_rules() {
        let names: Vec<&str> = files().iter().map(|(name, _)| *name).collect();
        for wanted in [
            "connectors/hotline-12345/connector.toml",
            "deploy/routing.toml",
            "deploy/calendar.toml",
            "deploy/assessment.toml",
            "deploy/open311.toml",
            "deploy/dev/demo-assessment.toml",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing");
        }
        assert!(names.iter().any(|n| n.starts_with("schemas/")));
        assert!(size() > 0);
    }

    #[test]
    fn written_files_load_as_the_repositorys() {
        let base = materialise().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&base).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let registry =
            crate::connector::Registry::load(&base.join("connectors"), &base.join("schemas"))
                .unwrap_or_else(|problems| panic!("{problems:?}"));
        assert!(registry.get("hotline-12345").is_some());
        crate::routing::Routing::load(&base.join("deploy/routing.toml"))
            .unwrap_or_else(|problems| panic!("{problems:?}"));
        // A second folder is a new one; both go.
        let other = materialise().unwrap();
        assert_ne!(base, other);
        remove();
        assert!(!base.exists() && !other.exists());
    }
}
