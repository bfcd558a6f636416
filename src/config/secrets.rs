//! Secrets (PKCS#11 PINs, database passwords): read from an environment variable or a file,
//! never from the TOML itself, and redacted by `Debug`. Nothing here logs a secret's value.

use std::{fmt, path::Path};

use serde::Deserialize;

use super::ConfigError;

/// Where a secret comes from: `{ env = "VAR" }` or `{ file = "path" }` (relative paths are
/// resolved against the data directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Environment variable holding the secret.
    pub env: Option<String>,
    /// File holding the secret (trailing newline trimmed).
    pub file: Option<std::path::PathBuf>,
}

impl SecretSource {
    /// Resolves the source against `data_dir`; `key` names the config key for error messages.
    pub(crate) fn resolve(&self, key: &str, data_dir: &Path) -> Result<SecretRef, ConfigError> {
        match (&self.env, &self.file) {
            (Some(var), None) => Ok(SecretRef::Env(var.clone())),
            (None, Some(file)) => Ok(SecretRef::File(data_dir.join(file))),
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
    /// Read from this file.
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret's value.
    pub fn read(&self) -> Result<Secret, std::io::Error> {
        match self {
            SecretRef::Env(var) => std::env::var(var).map(Secret).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("environment variable {var} is not set"))
            }),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
}

/// A secret value whose `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself; call only where it is handed to the HSM or the database driver.
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

    #[test]
    fn debug_redacts() {
        let s = Secret::new("1234".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{s}").contains("1234"));
    }

    #[test]
    fn file_secret_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pin"), "9876\n").unwrap();
        let src = SecretSource { env: None, file: Some("pin".into()) };
        let r = src.resolve("hsm.user_pin", dir.path()).unwrap();
        assert_eq!(r.read().unwrap().expose(), "9876");
    }

    #[test]
    fn both_sources_is_an_error_naming_the_key() {
        let src = SecretSource { env: Some("X".into()), file: Some("f".into()) };
        let e = src.resolve("hsm.user_pin", Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("hsm.user_pin"));
    }
}
