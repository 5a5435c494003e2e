//! rsyslog, unpacked by `scripts/install-rsyslog.sh` (not installed), run from a config of its
//! own: the bench's side-by-side rows and the syslog tests' real `omfwd` sender both use it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where rsyslog was unpacked, if it was.
pub struct Rsyslog {
    /// `rsyslogd`.
    pub binary: PathBuf,
    /// The folder of its loadable modules (`-M`).
    pub modules: PathBuf,
    /// `LD_LIBRARY_PATH` for the libraries unpacked beside it.
    pub library_path: String,
}

impl Rsyslog {
    /// rsyslog unpacked in `GYGES_RSYSLOG_DIR`, or else in `target/rsyslog`; `None` when it is not there.
    pub fn find() -> Option<Rsyslog> {
        let root = std::env::var_os("GYGES_RSYSLOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| super::repo_root().join("target").join("rsyslog"));
        let binary = root.join("usr/sbin/rsyslogd");
        if !binary.is_file() {
            return None;
        }
        let library_root = root.join("usr/lib");
        let multiarch = std::fs::read_dir(&library_root)
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.join("rsyslog/imtcp.so").is_file())?;
        Some(Rsyslog {
            binary,
            modules: multiarch.join("rsyslog"),
            library_path: format!(
                "{}:{}",
                multiarch.display(),
                root.join("lib").join(multiarch.file_name()?).display()
            ),
        })
    }

    /// The version line of `rsyslogd -v`.
    pub fn version(&self) -> String {
        Command::new(&self.binary)
            .arg("-v")
            .env("LD_LIBRARY_PATH", &self.library_path)
            .output()
            .ok()
            .and_then(|output| {
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                let first = text.lines().next()?;
                let version = first.split(" compiled with").next().unwrap_or(first);
                Some(version.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .unwrap_or_else(|| "rsyslogd (version unknown)".into())
    }
}

impl Rsyslog {
    /// `rsyslogd -n -f CONFIG` in the foreground, its pid file and work files in `dir`.
    pub fn command(&self, config: &Path, dir: &Path) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("-n")
            .arg("-f")
            .arg(config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .arg("-M")
            .arg(&self.modules)
            .env("LD_LIBRARY_PATH", &self.library_path);
        command
    }
}
