//! The URL scheme baked into certificates (AIA, CDP) and served by `server::routes` (from the
//! prefixes in [`crate::paths`]), and the files written to the data directory.

use std::path::Path;

use crate::{
    config::Urls,
    paths::{ACME_PREFIX, CRL_PREFIX, OCSP_PREFIX},
};

/// Full CRL of `issuer` (`root` for the root's CRL).
pub fn crl_url(urls: &Urls, issuer: &str) -> String {
    format!("{}{CRL_PREFIX}/{issuer}.crl", urls.http_base)
}

/// Delta CRL of `issuer`.
pub fn delta_crl_url(urls: &Urls, issuer: &str) -> String {
    format!("{}{CRL_PREFIX}/{issuer}-delta.crl", urls.http_base)
}

/// OCSP responder.
pub fn ocsp_url(urls: &Urls) -> String {
    format!("{}{OCSP_PREFIX}", urls.http_base)
}

/// AIA caIssuers: the issuer's certificate in DER.
pub fn ca_issuers_url(urls: &Urls, issuer: &str) -> String {
    format!("{}/ca/{issuer}.der", urls.http_base)
}

/// ACME directory.
pub fn acme_directory_url(urls: &Urls) -> String {
    format!("{}{ACME_PREFIX}/directory", urls.https_base)
}

/// Writes `contents` to `path` unless it already holds exactly that (keeps mtimes stable).
pub fn write_if_changed(path: &Path, contents: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(tmp, path)
}
