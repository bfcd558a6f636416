//! `CmsError`: why a CMS structure could not be built.

/// A CMS structure that could not be built. Every variant is a server-side failure: the
/// protocol crates decide how (and whether) a client hears of it.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// DER encoding failed.
    #[error("CMS encoding: {0}")]
    Encoding(#[from] der::Error),
    /// The recipient's public key is not an RSA key privca can encrypt to.
    #[error("the recipient key is not a usable RSA public key")]
    RecipientKey,
    /// The operating system's random source failed.
    #[error("randomness unavailable")]
    Randomness,
    /// Content or key encryption failed.
    #[error("encryption failed: {0}")]
    Encryption(&'static str),
}
