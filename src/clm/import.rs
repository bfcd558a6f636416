//! `privca inventory import FILE…`: certificates privca did not issue, from PEM bundles and
//! chains or DER files, into the inventory. Each file is one unit: it is read and parsed
//! whole first, and a malformed file writes nothing (the error names it) while the other
//! files go on. A certificate privca issued is recognised by its fingerprint and not copied.

use std::{path::Path, process::ExitCode};

use super::discover::{
    certinfo::CertInfo,
    record::{DEFAULT_TIER, UNOWNED},
};
use crate::{
    app::App,
    audit::{AuditEvent, AuditKind},
    error::CaError,
    ledger::{ExternalSource, ImportOutcome},
};

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading failed.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no certificate.
    #[error("{file}: no certificate found (expected PEM CERTIFICATE blocks or one DER certificate)")]
    Empty {
        /// The file.
        file: String,
    },
    /// A PEM block or the DER is malformed.
    #[error("{file}: certificate #{index} is malformed: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// 1-based position in the file.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The `-----BEGIN …-----` … `-----END …-----` blocks of a PEM text.
pub fn pem_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = &rest[start..];
        let Some(end) = from.find("-----END ") else { break };
        let tail = &from[end + 9..];
        let close = tail.find("-----").map_or(tail.len(), |i| i + 5);
        let len = end + 9 + close;
        out.push(&from[..len]);
        rest = &from[len..];
    }
    out
}

/// The certificates of one file's bytes: PEM (every CERTIFICATE block; other blocks such as
/// keys are skipped) or a single DER certificate. `file` names it in errors.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<CertInfo>, ImportError> {
    let malformed = |index: usize, reason: String| ImportError::Malformed { file: file.to_owned(), index, reason };
    let text = std::str::from_utf8(bytes).ok().filter(|t| t.contains("-----BEGIN "));
    let Some(text) = text else {
        if bytes.is_empty() {
            return Err(ImportError::Empty { file: file.to_owned() });
        }
        return CertInfo::from_der(bytes).map(|c| vec![c]).map_err(|e| malformed(1, e.to_string()));
    };
    let mut certs = Vec::new();
    for block in pem_blocks(text) {
        let index = certs.len() + 1;
        if !block.starts_with("-----BEGIN CERTIFICATE-----") && !block.starts_with("-----BEGIN X509 CERTIFICATE-----") {
            continue;
        }
        let (_, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| malformed(index, format!("PEM: {e}")))?;
        certs.push(CertInfo::from_der(&der).map_err(|e| malformed(index, e.to_string()))?);
    }
    if text.matches("-----BEGIN CERTIFICATE-----").count() > certs.len() {
        return Err(malformed(certs.len() + 1, "PEM block without its END line".into()));
    }
    if certs.is_empty() {
        return Err(ImportError::Empty { file: file.to_owned() });
    }
    Ok(certs)
}

/// Reads and parses `path`.
pub fn read(path: &Path) -> Result<Vec<CertInfo>, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read { file: file.clone(), source })?;
    parse(&file, &bytes)
}

/// Imports each of `files`; exit status 1 if any file failed.
pub async fn run(
    app: &App,
    files: &[std::path::PathBuf],
    owner: Option<&str>,
    tier: Option<&str>,
) -> Result<ExitCode, CaError> {
    let owner = owner.unwrap_or(UNOWNED);
    let tier = tier.unwrap_or(DEFAULT_TIER);
    let tier = super::query::tier(&app.config.clm, tier)?;
    let tier = tier.as_str();
    let actor = crate::ca::Requester::cli().to_string();
    let mut failed = 0;
    for path in files {
        let file = path.display().to_string();
        let certs = match read(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let rows: Vec<_> = certs.iter().map(|c| c.external(ExternalSource::Import, owner, tier)).collect();
        let event = AuditEvent::new(AuditKind::InventoryImported, actor.as_str())
            .detail(serde_json::json!({ "file": file, "certificates": rows.len(), "owner": owner, "tier": tier }));
        match app.ledger.import_certificates(&rows, &event).await {
            Ok(ImportOutcome { new, known, own }) => {
                let mut line =
                    format!("{file}: {} certificate(s): {new} imported, {known} already in the inventory", rows.len());
                if !own.is_empty() {
                    line.push_str(&format!(", {} issued by privca (serial {})", own.len(), own.join(", ")));
                }
                println!("{line}");
            }
            Err(e) => {
                eprintln!("error: {file}: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_split_a_bundle() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\nmore\n-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert!(
            blocks[0].starts_with("-----BEGIN CERTIFICATE-----") && blocks[0].ends_with("-----END CERTIFICATE-----")
        );
        assert!(blocks[1].ends_with("-----END PRIVATE KEY-----"));
    }

    #[test]
    fn malformed_files_are_named() {
        let e = parse("bad.pem", b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(e.to_string().starts_with("bad.pem: certificate #1 is malformed"), "{e}");
        let e = parse("x.der", b"\x30\x03\x02\x01\x01").unwrap_err();
        assert!(e.to_string().starts_with("x.der: certificate #1 is malformed"), "{e}");
        let e = parse("empty.pem", b"").unwrap_err();
        assert!(matches!(e, ImportError::Empty { .. }), "{e}");
        let e = parse("key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(matches!(e, ImportError::Empty { .. }), "{e}");
    }
}
