//! Secrets (PKCS#11 PINs, database passwords, the SCEP static challenge): read from an
//! environment variable or a file, never from the TOML itself. A [`Secret`] holds its value in a
//! [`Zeroizing`] string (wiped when dropped) and is redacted by `Debug` and `Display`. A secret
//! file that group or others may read or write is refused, with an error naming the config key,
//! the file and its mode. Nothing here logs a secret's value.

use std::{
    fmt,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use zeroize::Zeroizing;

use super::ConfigError;

/// Where a secret comes from: `{ env = "VAR" }` or `{ file = "path" }` (relative paths are
/// resolved against the data directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Environment variable holding the secret.
    pub env: Option<String>,
    /// File holding the secret (trailing newline trimmed).
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// Resolves the source against `data_dir`; `key` names the config key for error messages.
    pub(crate) fn resolve(&self, key: &str, data_dir: &Path) -> Result<SecretRef, ConfigError> {
        match (&self.env, &self.file) {
            (Some(var), None) => Ok(SecretRef::Env(var.clone())),
            (None, Some(file)) => Ok(SecretRef::File { key: key.to_owned(), path: data_dir.join(file) }),
            _ => Err(ConfigError::invalid(key, "set exactly one of `env` or `file`")),
        }
    }
}

/// A resolved secret location. Reading it may fail later (the dev token writes its PIN files
/// during `init`), so the value is only read on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file (mode 0600 or stricter); `key` is the config key, for errors.
    File {
        /// The config key (`hsm.user_pin`).
        key: String,
        /// The file.
        path: PathBuf,
    },
}

impl SecretRef {
    /// Reads the secret's value. A file that group or others may access is refused
    /// (`PermissionDenied`, naming the key, the file and its mode).
    pub fn read(&self) -> Result<Secret, std::io::Error> {
        match self {
            SecretRef::Env(var) => std::env::var(var).map(Secret::new).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("environment variable {var} is not set"))
            }),
            SecretRef::File { key, path } => {
                let named =
                    |e: std::io::Error| std::io::Error::new(e.kind(), format!("{key}: {}: {e}", path.display()));
                check_private(key, path)?;
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(named)?);
                Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
        }
    }
}

/// Refuses a secret file (or the file a symlink points to) that group or others may read or
/// write.
fn check_private(key: &str, path: &Path) -> Result<(), std::io::Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{key}: {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let what = if mode & 0o044 != 0 { "readable" } else { "writable" };
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!("{key}: {} is {what} by group or others (mode {mode:04o}); chmod 600 it", path.display()),
    ))
}

/// A secret value, wiped from memory when dropped, whose `Debug` and `Display` print
/// `[redacted]`.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself; call only where it is handed to the HSM, the database driver or a
    /// constant-time comparison.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::new("1234".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{s}").contains("1234"));
    }

    #[test]
    fn file_secret_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        write_mode(&dir.path().join("pin"), "9876\n", 0o600);
        let src = SecretSource { env: None, file: Some("pin".into()) };
        let r = src.resolve("hsm.user_pin", dir.path()).unwrap();
        assert_eq!(r.read().unwrap().expose(), "9876");
    }

    #[test]
    fn a_file_open_to_group_or_others_is_refused_naming_key_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.pin");
        let src = SecretSource { env: None, file: Some("user.pin".into()) };
        let r = src.resolve("hsm.user_pin", dir.path()).unwrap();
        for (mode, what) in [(0o644, "readable"), (0o640, "readable"), (0o604, "readable"), (0o620, "writable")] {
            write_mode(&path, "9876", mode);
            let e = r.read().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
            let text = e.to_string();
            assert!(text.starts_with("hsm.user_pin: "), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&format!("{what} by group or others (mode {mode:04o})")), "{text}");
            assert!(!text.contains("9876"));
        }
        for mode in [0o600, 0o400] {
            write_mode(&path, "9876", mode);
            assert_eq!(r.read().unwrap().expose(), "9876");
        }
    }

    #[test]
    fn a_missing_file_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let r = SecretSource { env: None, file: Some("nope".into()) }.resolve("database.password", dir.path()).unwrap();
        assert!(r.read().unwrap_err().to_string().starts_with("database.password: "));
    }

    #[test]
    fn both_sources_is_an_error_naming_the_key() {
        let src = SecretSource { env: Some("X".into()), file: Some("f".into()) };
        let e = src.resolve("hsm.user_pin", Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("hsm.user_pin"));
    }
}
