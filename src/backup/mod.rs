//! `privca backup` and `privca restore`: a consistent snapshot of the ledger (SQLite's online
//! `VACUUM INTO`, or `pg_dump` for PostgreSQL) and of the SoftHSM2 token directory, with a
//! manifest of high-water marks (audit position, cRLNumbers), and its restore ([`restore`]).
//!
//! The CA keys are not extractable: the token directory is copied as files, and twice-read
//! until two consecutive digests agree, so a copy never catches a key being written. With a
//! hardware HSM the keys are backed up by the HSM's own procedure and the manifest says so.

pub mod restore;

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::Command,
};

use serde::{Deserialize, Serialize};

use crate::{app::App, error::CaError, ledger::HighWater};

/// `format` of the manifest.
pub const FORMAT: &str = "privca-backup/1";
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The SQLite snapshot's file name.
pub const SQLITE_FILE: &str = "privca.db";
/// The PostgreSQL dump's file name (`pg_dump --format=custom`).
pub const PG_FILE: &str = "ledger.pgdump";
/// The token directory's copy.
pub const TOKENS_DIR: &str = "tokens";

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Unix seconds.
    pub created_at: i64,
    /// privca's version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// High-water marks of the ledger copy.
    pub high_water: HighWater,
    /// `softhsm` (copied) or `external` (back up with the HSM's own procedure).
    pub token: String,
    /// SHA-256 of the audit checkpoint key (an audit export used by a restore must match it).
    pub audit_key_sha256: String,
    /// Every file of the backup with its SHA-256, relative to the backup directory.
    pub files: Vec<(String, String)>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> CaError {
    move |e| CaError::internal(what).with_source(e)
}

/// SHA-256 (hex) of every file under `dir`, relative paths, sorted.
pub fn digest_tree(dir: &Path) -> Result<Vec<(String, String)>, CaError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(format!("cannot read {}", d.display())))? {
            let path = entry.map_err(io(format!("cannot read {}", d.display())))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
                let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().into_owned();
                out.push((rel, hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), CaError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .map_err(io(format!("cannot create {}", to.display())))?;
    for entry in std::fs::read_dir(from).map_err(io(format!("cannot read {}", from.display())))? {
        let path = entry.map_err(io(format!("cannot read {}", from.display())))?.path();
        let target = to.join(path.file_name().unwrap_or_default());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(io(format!("cannot copy {}", path.display())))?;
        }
    }
    Ok(())
}

/// Copies the token directory `from` to `to` so that the copy equals one state of `from`: the
/// source is digested before and after each copy until both digests and the copy agree.
pub fn copy_token_dir(from: &Path, to: &Path) -> Result<(), CaError> {
    for _ in 0..5 {
        let before = digest_tree(from)?;
        if to.exists() {
            std::fs::remove_dir_all(to).map_err(io(format!("cannot clear {}", to.display())))?;
        }
        copy_tree(from, to)?;
        if digest_tree(from)? == before && digest_tree(to)? == before {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(CaError::new(crate::error::ErrorKind::Unavailable, "the token directory kept changing during the copy; retry"))
}

/// `database.url` (which holds no password) and the password of `database.password`.
pub(crate) fn pg_target(config: &crate::config::Config) -> Result<(String, Option<String>), CaError> {
    let password = match &config.database.password {
        Some(p) => Some(p.read().map_err(io("cannot read the database password".into()))?.expose().to_owned()),
        None => None,
    };
    Ok((config.database.url.clone(), password))
}

/// `pg_dump`/`pg_restore` on `url`, with the password in the environment (never on a command
/// line).
pub(crate) fn pg_tool(tool: &str, (url, password): &(String, Option<String>), args: &[&str]) -> Result<(), CaError> {
    let mut cmd = Command::new(tool);
    cmd.args(args).arg(format!("--dbname={url}"));
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().map_err(io(format!("cannot run {tool} (Debian: postgresql-client)")))?;
    if !out.status.success() {
        return Err(CaError::internal(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// Writes a backup of `app`'s ledger and token to `out` (a new or empty directory).
pub async fn backup(app: &App, out: &Path) -> Result<Manifest, CaError> {
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(CaError::bad_request(format!("{} exists and is not empty", out.display())));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .map_err(io(format!("cannot create {}", out.display())))?;
    let postgres = app.config.database.is_postgres();
    // Read before the snapshot on both databases: the snapshot holds at least this much, and a
    // restore re-applies what is both in it and after the marks idempotently. (Opening the
    // snapshot itself to read them would change it: the ledger switches a file to WAL.)
    let high_water = app.ledger.high_water().await?;
    if postgres {
        let target = pg_target(&app.config)?;
        let file = out.join(PG_FILE);
        tokio::task::spawn_blocking(move || {
            pg_tool("pg_dump", &target, &["--format=custom", "--no-owner", &format!("--file={}", file.display())])
        })
        .await
        .map_err(|e| CaError::internal("pg_dump task").with_source(e))??;
    } else {
        app.ledger.snapshot_sqlite(&out.join(SQLITE_FILE).to_string_lossy()).await?;
    }
    // The dev/default SoftHSM2 token store of this data directory (`prepare_softhsm`); any other
    // module, or a token store elsewhere, is backed up by its own procedure.
    let softhsm =
        app.config.hsm.is_softhsm() && app.config.hsm.auto_init && app.config.data_dir.join(TOKENS_DIR).is_dir();
    if softhsm {
        let tokens = app.config.data_dir.join(TOKENS_DIR);
        let target = out.join(TOKENS_DIR);
        tokio::task::spawn_blocking(move || copy_token_dir(&tokens, &target))
            .await
            .map_err(|e| CaError::internal("token copy task").with_source(e))??;
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: crate::ledger::now(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: if postgres { "postgres" } else { "sqlite" }.into(),
        high_water,
        token: if softhsm { "softhsm" } else { "external" }.into(),
        audit_key_sha256: crate::audit::export::key_fingerprint(
            &app.signing.key_info(crate::audit::CHECKPOINT_KEY)?.spki_der,
        ),
        files: digest_tree(out)?,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| CaError::internal("manifest").with_source(e))?;
    crate::signer::pkcs11::token::write_private(&out.join(MANIFEST), text.as_bytes())
        .map_err(io("cannot write the manifest".into()))?;
    Ok(manifest)
}

/// Reads and checks a backup's manifest: format, and every file's digest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, CaError> {
    let path: PathBuf = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
    let m: Manifest =
        serde_json::from_slice(&text).map_err(|e| CaError::bad_request(format!("{}: {e}", path.display())))?;
    if m.format != FORMAT {
        return Err(CaError::bad_request(format!("{}: format `{}`, expected `{FORMAT}`", path.display(), m.format)));
    }
    let mut found = digest_tree(dir)?;
    found.retain(|(f, _)| f != MANIFEST);
    if found != m.files {
        return Err(CaError::bad_request(format!(
            "{}: the files do not match the manifest (changed or missing)",
            dir.display()
        )));
    }
    Ok(m)
}
