//! Links Debian's static lpeg when the `lua` feature is on.
//!
//! lpeg ships as `liblua5.4-lpeg.a` in the package `lua-lpeg-dev` (installed by
//! `scripts/setup.sh`). The archive only references the Lua C API, which mlua's vendored
//! Lua 5.4 provides at the final link; nothing else of the system's Lua is used.
//! `GYGES_LPEG_LIB_DIR` overrides the directories searched.

use std::path::{Path, PathBuf};

/// The archive's file name, as Debian installs it.
const LPEG_ARCHIVE: &str = "liblua5.4-lpeg.a";

fn main() {
    println!("cargo:rerun-if-env-changed=GYGES_LPEG_LIB_DIR");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_LUA");
    if std::env::var_os("CARGO_FEATURE_LUA").is_none() {
        return;
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("GYGES_LPEG_LIB_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    let multiarch = multiarch_triple();
    candidates.push(Path::new("/usr/lib").join(&multiarch));
    candidates.push(PathBuf::from("/usr/lib"));
    candidates.push(PathBuf::from("/usr/local/lib"));
    let found = candidates
        .iter()
        .find(|dir| dir.join(LPEG_ARCHIVE).is_file());
    match found {
        Some(dir) => {
            println!(
                "cargo:rerun-if-changed={}",
                dir.join(LPEG_ARCHIVE).display()
            );
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=static=lua5.4-lpeg");
        }
        None => {
            let searched: Vec<String> = candidates
                .iter()
                .map(|dir| dir.display().to_string())
                .collect();
            panic!(
                "{LPEG_ARCHIVE} not found in {searched:?}: install Debian's lua-lpeg-dev \
                 (run scripts/setup.sh), set GYGES_LPEG_LIB_DIR, or build without the `lua` \
                 feature"
            );
        }
    }
}

/// Debian's multiarch directory name for the target, e.g. `x86_64-linux-gnu`.
fn multiarch_triple() -> String {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_else(|_| "gnu".into());
    let arch = match arch.as_str() {
        "x86" => "i386".to_string(),
        "arm" => "arm".to_string(),
        other => other.to_string(),
    };
    format!("{arch}-linux-{env}")
}
