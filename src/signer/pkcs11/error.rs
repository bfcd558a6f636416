//! `Pkcs11Error`: token and module failures. `CKR_*` codes stay as data for the logs; callers
//! map every variant to "HSM unavailable", never to a client error.

/// A PKCS#11 failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {module}: {source}")]
    Module { module: String, source: cryptoki::error::Error },
    /// No token with the configured label.
    #[error("no PKCS#11 token labelled `{0}`")]
    TokenNotFound(String),
    /// The token is missing but SoftHSM2's token directory holds tokens it could not read.
    #[error(
        "no PKCS#11 token labelled `{label}`, but {dir} holds {on_disk} SoftHSM2 token(s) and the module reads only \
         {readable}: a token there is damaged or unreadable. privca will not create a new, empty token in its place; \
         restore that directory from a backup (or move it away to start afresh)"
    )]
    TokenUnreadable {
        /// Configured label.
        label: String,
        /// SoftHSM2's `directories.tokendir`.
        dir: String,
        /// Token directories (with a `token.object`) on disk.
        on_disk: usize,
        /// Initialised tokens the module lists.
        readable: usize,
    },
    /// A PIN could not be read or created.
    #[error("PIN: {0}")]
    Pin(std::io::Error),
    /// A call into the module failed.
    #[error("{context}: {source}")]
    Call { context: &'static str, source: cryptoki::error::Error },
    /// The token returned something that makes no sense (bad point encoding, missing attribute).
    #[error("token returned an unusable value: {0}")]
    Malformed(&'static str),
    /// A generated key lacks CKA_ALWAYS_SENSITIVE or CKA_NEVER_EXTRACTABLE.
    #[error("key `{0}` is not always-sensitive and never-extractable")]
    KeyExportable(String),
    /// The token lacks a mechanism the configuration needs.
    #[error("the token does not offer mechanism {0}")]
    MechanismMissing(String),
    /// More than one object carries this label.
    #[error("label `{0}` matches more than one key")]
    Ambiguous(String),
}

impl Pkcs11Error {
    /// Whether the module or token failed (see [`super::super::SignerError::is_device_failure`]):
    /// every variant but a call's answer about its input, and for a call the return codes that
    /// say the device, the token, a session or the login is gone.
    pub fn is_device_failure(&self) -> bool {
        use cryptoki::error::{Error as CkError, RvError};
        match self {
            Pkcs11Error::Call { source: CkError::Pkcs11(rv, _), .. } => matches!(
                rv,
                RvError::DeviceError
                    | RvError::DeviceMemory
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::SessionCount
                    | RvError::UserNotLoggedIn
                    | RvError::CryptokiNotInitialized
                    | RvError::KeyHandleInvalid
                    | RvError::ObjectHandleInvalid
                    | RvError::SlotIdInvalid
            ),
            Pkcs11Error::Call { .. } | Pkcs11Error::Malformed(_) => false,
            Pkcs11Error::Module { .. }
            | Pkcs11Error::TokenNotFound(_)
            | Pkcs11Error::TokenUnreadable { .. }
            | Pkcs11Error::Pin(_)
            | Pkcs11Error::KeyExportable(_)
            | Pkcs11Error::MechanismMissing(_)
            | Pkcs11Error::Ambiguous(_) => true,
        }
    }
}

/// Adds a context string to a `cryptoki` result.
pub(crate) trait CallContext<T> {
    fn ctx(self, context: &'static str) -> Result<T, Pkcs11Error>;
}

impl<T> CallContext<T> for Result<T, cryptoki::error::Error> {
    fn ctx(self, context: &'static str) -> Result<T, Pkcs11Error> {
        self.map_err(|source| Pkcs11Error::Call { context, source })
    }
}
