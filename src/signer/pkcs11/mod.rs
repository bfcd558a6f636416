//! `Pkcs11Signer`: a PKCS#11 token behind the [`Signer`] trait.
//!
//! The module is loaded once, the user logs in once, and a pool of sessions (one per concurrent
//! operation; SoftHSM2 crashes when two threads share a session) serves all signatures. Key
//! handles are resolved once, at start-up or right after generation, and cached with their
//! public keys: the signing path does no `C_FindObjects`. Keys are generated in the token with
//! `CKA_SENSITIVE=true`, `CKA_EXTRACTABLE=false` and checked for `CKA_ALWAYS_SENSITIVE` and
//! `CKA_NEVER_EXTRACTABLE` afterwards. This module never reads `CKA_VALUE` of a private key and
//! never calls `C_WrapKey`.
//!
//! Besides key pairs, the token holds AES-256 secret keys (`CKO_SECRET_KEY`, generated in the
//! token, sensitive, never extractable, `CKA_ENCRYPT`/`CKA_DECRYPT` only) that seal secrets
//! the ledger keeps with `CKM_AES_GCM` (see [`crate::sealing`]).

mod error;
mod mechanism;
mod public_key;
pub mod token;

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock, PoisonError, RwLock},
    time::{Duration, Instant},
};

use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error as CkError, RvError},
    mechanism::{aead::GcmParams, Mechanism, MechanismType},
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    slot::Slot,
    types::{AuthPin, Ulong},
};
use zeroize::Zeroizing;

use self::error::CallContext;
pub use self::error::Pkcs11Error;
pub use self::mechanism::ecdsa_raw_to_der;
pub use self::public_key::ec_spki;
use super::{KeyAlgorithm, KeyInfo, Signer, SignerError, SigningAlgorithm};
use crate::config::{HsmConfig, Secret};

/// What a generated key is for: signing, decryption (the SCEP RA's envelope key) or both (a
/// shared SCEP RA key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// `CKA_DECRYPT` only (RSA only).
    Decrypt,
    /// `CKA_SIGN` only.
    Sign,
    /// `CKA_SIGN` and `CKA_DECRYPT` (RSA only).
    SignAndDecrypt,
}

impl KeyPurpose {
    fn signs(self) -> bool {
        self != Self::Decrypt
    }

    fn decrypts(self) -> bool {
        self != Self::Sign
    }
}

/// The module is initialised again at most this often while the token keeps failing.
pub const REINIT_INTERVAL: Duration = Duration::from_secs(2);

struct LoadedKey {
    handle: ObjectHandle,
    info: KeyInfo,
}

/// A logged-in PKCS#11 token with a session pool and cached key handles.
///
/// A token that fails (a device error, a vanished token: SoftHSM2 marks a token whose
/// directory disappeared invalid for the rest of the process, even once the directory is
/// back) is recovered without a restart: a key whose handle the token no longer knows is
/// looked up again, and if the token still fails, the module is initialised again
/// (`C_Finalize`, `C_Initialize`, log in, look every cached key up), at most once every
/// [`REINIT_INTERVAL`]. Every call into the module holds [`Pkcs11Signer::gate`] shared; the
/// re-initialisation holds it alone. (One signer per process: the module's other users in the
/// same process, if any, lose their sessions too.)
pub struct Pkcs11Signer {
    ctx: Pkcs11,
    slot: Mutex<Slot>,
    token_label: String,
    gate: RwLock<()>,
    last_reinit: Mutex<Option<Instant>>,
    pin: Secret,
    pool: Mutex<Vec<Session>>,
    /// Sessions the pool keeps (`hsm.sessions`). A caller that finds the pool empty (more
    /// callers at once than sessions: the signing threads plus TLS handshakes on the async
    /// workers) opens one of its own, which is closed instead of kept when the pool is full.
    capacity: usize,
    keys: RwLock<HashMap<String, LoadedKey>>,
    /// AES secret keys by label (see [`Pkcs11Signer::ensure_secret_key`]).
    secret_keys: RwLock<HashMap<String, ObjectHandle>>,
}

/// Every module context loaded by this process. Holding them keeps the modules mapped until
/// [`finalize`] runs on the main thread before exit: a module unloaded (or finalised) by
/// whichever thread drops the last reference, while the main thread runs the process's exit
/// handlers, crashes SoftHSM2.
static MODULES: OnceLock<Mutex<Vec<Pkcs11>>> = OnceLock::new();

/// Calls `C_Finalize` on every module this process loaded. Run it once, on the main thread,
/// after all PKCS#11 work is done and just before the process exits.
pub fn finalize() {
    let modules = MODULES.get().and_then(|m| m.lock().ok().map(|mut v| std::mem::take(&mut *v))).unwrap_or_default();
    for ctx in modules {
        if let Err(e) = ctx.finalize() {
            tracing::debug!(error = %e, "C_Finalize");
        }
    }
}

impl Pkcs11Signer {
    /// Loads the module, finds (or, in dev, creates) the token, logs in and opens
    /// `hsm.sessions` sessions.
    pub fn open(hsm: &HsmConfig) -> Result<Self, Pkcs11Error> {
        let module = hsm.module.display().to_string();
        let ctx = Pkcs11::new(&hsm.module).map_err(|source| Pkcs11Error::Module { module: module.clone(), source })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(source) => return Err(Pkcs11Error::Module { module, source }),
        }
        if let Ok(mut loaded) = MODULES.get_or_init(|| Mutex::new(Vec::new())).lock() {
            loaded.push(ctx.clone());
        }
        let slot = match token::find_token(&ctx, &hsm.token_label)? {
            Some(slot) => slot,
            None if hsm.auto_init => token::init_token(&ctx, hsm)?,
            None => return Err(Pkcs11Error::TokenNotFound(hsm.token_label.clone())),
        };
        let pin = hsm.user_pin.read().map_err(Pkcs11Error::Pin)?;
        let capacity = hsm.sessions.max(1);
        let signer = Self {
            ctx,
            slot: Mutex::new(slot),
            token_label: hsm.token_label.clone(),
            gate: RwLock::new(()),
            last_reinit: Mutex::new(None),
            pin,
            pool: Mutex::new(Vec::new()),
            capacity,
            keys: RwLock::new(HashMap::new()),
            secret_keys: RwLock::new(HashMap::new()),
        };
        let mut sessions = Vec::with_capacity(capacity);
        for _ in 0..capacity {
            sessions.push(signer.open_session()?);
        }
        if let Ok(mut pool) = signer.pool.lock() {
            *pool = sessions;
        }
        Ok(signer)
    }

    fn slot(&self) -> Slot {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_session(&self) -> Result<Session, Pkcs11Error> {
        let session = self.ctx.open_ro_session(self.slot()).ctx("C_OpenSession")?;
        self.login(&session)?;
        Ok(session)
    }

    fn login(&self, session: &Session) -> Result<(), Pkcs11Error> {
        match session.login(UserType::User, Some(&AuthPin::from(self.pin.expose().to_owned()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(source) => Err(Pkcs11Error::Call { context: "C_Login", source }),
        }
    }

    /// Runs `f` on a pooled session; on a session-level failure (closed, logged out, device
    /// reset) re-opens a session, logs in again and retries once.
    fn with_session<T>(&self, f: impl Fn(&Session) -> Result<T, CkError>) -> Result<T, Pkcs11Error> {
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let session = match pooled {
            Some(s) => s,
            None => self.open_session()?,
        };
        match f(&session) {
            Ok(v) => {
                self.give_back(session);
                Ok(v)
            }
            Err(CkError::Pkcs11(rv, _)) if is_session_failure(rv) => {
                tracing::warn!(?rv, "PKCS#11 session failed; reopening");
                drop(session);
                let session = self.open_session()?;
                let out = f(&session).ctx("PKCS#11 operation (retry)");
                self.give_back(session);
                out
            }
            Err(source) => {
                self.give_back(session);
                Err(Pkcs11Error::Call { context: "PKCS#11 operation", source })
            }
        }
    }

    /// Runs `f` with the cached `handle` of private key `label`; when the token answers that
    /// the handle is not valid (its objects were read again from storage: SoftHSM2 gives them
    /// new handles when its token directory comes back after it was gone), looks the key up
    /// again by label and retries once, so signing resumes without a restart.
    fn with_key<T>(
        &self,
        label: &str,
        handle: ObjectHandle,
        f: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, Pkcs11Error> {
        let first = match self.with_session(|s| f(s, handle)) {
            Err(Pkcs11Error::Call {
                source: CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _),
                ..
            }) => {
                tracing::warn!(key = label, "the token no longer knows the key's handle; looking the key up again");
                match self.load_key(label) {
                    Ok(Some(_)) => {
                        let handle = self.handle(label).map_err(|_| Pkcs11Error::Malformed("the key is not cached"))?.0;
                        self.with_session(|s| f(s, handle))
                    }
                    Ok(None) => Err(Pkcs11Error::Malformed("the key is no longer in the token")),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        match first {
            Err(e)
                if e.is_device_failure()
                    || matches!(e, Pkcs11Error::Malformed("the key is no longer in the token")) =>
            {
                tracing::error!(key = label, error = %e, "the token failed");
                self.reinit()?;
                let handle = self.handle(label).map_err(|_| Pkcs11Error::Malformed("the key is not cached"))?.0;
                self.with_session(|s| f(s, handle))
            }
            other => other,
        }
    }

    /// Initialises the module again (see the type's documentation); fails at once if it was
    /// tried less than [`REINIT_INTERVAL`] ago.
    fn reinit(&self) -> Result<(), Pkcs11Error> {
        {
            let mut last = self.last_reinit.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REINIT_INTERVAL) {
                return Err(Pkcs11Error::Malformed("the token failed; it is tried again shortly"));
            }
            *last = Some(Instant::now());
        }
        let _gate = self.gate.write().unwrap_or_else(PoisonError::into_inner);
        let stale: Vec<Session> = self.pool.lock().map(|mut p| p.drain(..).collect()).unwrap_or_default();
        drop(stale);
        if let Err(e) = self.ctx.clone().finalize() {
            tracing::debug!(error = %e, "C_Finalize before re-initialising");
        }
        match self.ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(source) => return Err(Pkcs11Error::Call { context: "C_Initialize (again)", source }),
        }
        let slot = token::find_token(&self.ctx, &self.token_label)?
            .ok_or_else(|| Pkcs11Error::TokenNotFound(self.token_label.clone()))?;
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = slot;
        let labels: Vec<String> = self.keys.read().map(|k| k.keys().cloned().collect()).unwrap_or_default();
        for label in labels {
            self.load_key_unlocked(&label)?;
        }
        let secrets: Vec<String> = self.secret_keys.read().map(|k| k.keys().cloned().collect()).unwrap_or_default();
        for label in secrets {
            self.load_secret_key_unlocked(&label)?;
        }
        let mut sessions = Vec::with_capacity(self.capacity);
        for _ in 0..self.capacity {
            sessions.push(self.open_session()?);
        }
        if let Ok(mut pool) = self.pool.lock() {
            *pool = sessions;
        }
        tracing::warn!(token = %self.token_label, "re-initialised the PKCS#11 module: the token answers again");
        Ok(())
    }

    /// Sessions in the pool, not in use now (at most `hsm.sessions`).
    pub fn idle_sessions(&self) -> usize {
        self.pool.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Returns `session` to the pool, or closes it when the pool is full (the pool's sessions
    /// stay open, so the token stays logged in).
    fn give_back(&self, session: Session) {
        let extra = match self.pool.lock() {
            Ok(mut pool) if pool.len() < self.capacity => {
                pool.push(session);
                None
            }
            _ => Some(session),
        };
        drop(extra); // C_CloseSession, outside the pool's lock
    }

    /// Finds the private key labelled `label` and caches its handle and public key.
    /// Returns `None` when the token has no such key.
    pub fn load_key(&self, label: &str) -> Result<Option<KeyInfo>, Pkcs11Error> {
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        self.load_key_unlocked(label)
    }

    fn load_key_unlocked(&self, label: &str) -> Result<Option<KeyInfo>, Pkcs11Error> {
        let session = self.open_session()?;
        let private = find_one(&session, ObjectClass::PRIVATE_KEY, label)?;
        let Some(handle) = private else { return Ok(None) };
        let public = find_one(&session, ObjectClass::PUBLIC_KEY, label)?
            .ok_or(Pkcs11Error::Malformed("private key without a public key object"))?;
        let info = read_public(&session, public, label)?;
        self.cache(handle, info.clone());
        Ok(Some(info))
    }

    fn cache(&self, handle: ObjectHandle, info: KeyInfo) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(info.label.clone(), LoadedKey { handle, info });
        }
    }

    /// Generates a key pair labelled `label` inside the token, checks that the private key is
    /// always-sensitive and never-extractable, test-signs with it, and caches it.
    pub fn generate_key(
        &self,
        label: &str,
        algorithm: KeyAlgorithm,
        purpose: KeyPurpose,
    ) -> Result<KeyInfo, Pkcs11Error> {
        let session = self.ctx.open_rw_session(self.slot()).ctx("C_OpenSession(RW)")?;
        self.login(&session)?;
        let id = key_id(label);
        if purpose.decrypts() && !algorithm.is_rsa() {
            return Err(Pkcs11Error::Malformed("only RSA keys decrypt"));
        }
        let (sign, decrypt) = (purpose.signs(), purpose.decrypts());
        let (mechanism, key_type, mut public_template) = keygen_params(algorithm);
        public_template.extend([
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(sign),
            Attribute::Encrypt(decrypt),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
        ]);
        let private_template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(sign),
            Attribute::Decrypt(decrypt),
            Attribute::Derive(false),
            Attribute::Unwrap(false),
            Attribute::Id(id),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let generated = session.generate_key_pair(&mechanism, &public_template, &private_template);
        let (public, private) = match generated {
            Err(CkError::Pkcs11(RvError::AttributeValueInvalid | RvError::DomainParamsInvalid, _))
                if algorithm == KeyAlgorithm::Ed25519 =>
            {
                // Some tokens want the curve name (PrintableString "edwards25519") instead of the OID.
                let mut template = public_template.clone();
                template.retain(|a| !matches!(a, Attribute::EcParams(_)));
                template.push(Attribute::EcParams(ED25519_PARAMS_NAME.to_vec()));
                session.generate_key_pair(&mechanism, &template, &private_template).ctx("C_GenerateKeyPair")?
            }
            other => other.ctx("C_GenerateKeyPair")?,
        };
        check_non_exportable(&session, private, label)?;
        let info = read_public(&session, public, label)?;
        let probe = b"privca key generation self-test";
        if decrypt {
            let ciphertext = session.encrypt(&Mechanism::RsaPkcs, public, probe).ctx("C_Encrypt")?;
            let plain = session.decrypt(&Mechanism::RsaPkcs, private, &ciphertext).ctx("C_Decrypt")?;
            if plain != probe {
                return Err(Pkcs11Error::Malformed("test decryption failed"));
            }
        }
        drop(session);
        self.cache(private, info.clone());
        if !sign {
            tracing::info!(key = label, algorithm = algorithm.name(), "generated decryption key in token");
            return Ok(info);
        }
        let alg = SigningAlgorithm::for_key(algorithm, false);
        let sig = self.sign(label, alg, probe).map_err(|_| Pkcs11Error::Malformed("test signature failed"))?;
        super::algorithm::verify_spki(&info.spki_der, alg, probe, &sig)
            .map_err(|_| Pkcs11Error::Malformed("test signature does not verify"))?;
        tracing::info!(key = label, algorithm = algorithm.name(), "generated key in token");
        Ok(info)
    }

    /// Finds the AES secret key labelled `label` and caches its handle; `false` when the token
    /// has none. A key that is not AES, or that is or was ever extractable, is refused.
    pub fn load_secret_key(&self, label: &str) -> Result<bool, Pkcs11Error> {
        let _gate = self.gate.read().unwrap_or_else(PoisonError::into_inner);
        self.load_secret_key_unlocked(label)
    }

    fn load_secret_key_unlocked(&self, label: &str) -> Result<bool, Pkcs11Error> {
        let session = self.open_session()?;
        let Some(handle) = find_one(&session, ObjectClass::SECRET_KEY, label)? else { return Ok(false) };
        let attrs = session.get_attributes(handle, &[AttributeType::KeyType]).ctx("C_GetAttributeValue(KEY_TYPE)")?;
        if !attrs.iter().any(|a| matches!(a, Attribute::KeyType(t) if *t == KeyType::AES)) {
            return Err(Pkcs11Error::Malformed("the secrets key is not an AES key"));
        }
        check_non_exportable(&session, handle, label)?;
        if let Ok(mut keys) = self.secret_keys.write() {
            keys.insert(label.to_owned(), handle);
        }
        Ok(true)
    }

    /// Loads the AES-256 secret key labelled `label`, generating it in the token first when
    /// there is none (`CKM_AES_KEY_GEN`; sensitive, never extractable, encrypt and decrypt
    /// only), and test-seals with it. Returns whether it was generated.
    pub fn ensure_secret_key(&self, label: &str) -> Result<bool, Pkcs11Error> {
        if self.load_secret_key(label)? {
            return Ok(false);
        }
        let offered = self.ctx.get_mechanism_list(self.slot()).ctx("C_GetMechanismList")?;
        for needed in [MechanismType::AES_KEY_GEN, MechanismType::AES_GCM] {
            if !offered.contains(&needed) {
                return Err(Pkcs11Error::MechanismMissing(format!("{needed} (needed to seal secrets)")));
            }
        }
        let session = self.ctx.open_rw_session(self.slot()).ctx("C_OpenSession(RW)")?;
        self.login(&session)?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(Ulong::from(AES_KEY_LEN)),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Id(key_id(label)),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let handle = session.generate_key(&Mechanism::AesKeyGen, &template).ctx("C_GenerateKey")?;
        check_non_exportable(&session, handle, label)?;
        drop(session);
        if let Ok(mut keys) = self.secret_keys.write() {
            keys.insert(label.to_owned(), handle);
        }
        let (iv, aad, probe) = ([7u8; GCM_IV_LEN], b"privca self-test", b"privca secret key generation self-test");
        let sealed =
            self.encrypt_secret(label, &iv, aad, probe).map_err(|_| Pkcs11Error::Malformed("test sealing failed"))?;
        let opened =
            self.decrypt_secret(label, &iv, aad, &sealed).map_err(|_| Pkcs11Error::Malformed("test opening failed"))?;
        if sealed.len() != probe.len() + GCM_TAG_LEN || opened.as_slice() != probe {
            return Err(Pkcs11Error::Malformed("test sealing gave a wrong answer"));
        }
        tracing::info!(key = label, "generated AES-256 secret key in token");
        Ok(true)
    }

    fn secret_handle(&self, label: &str) -> Result<ObjectHandle, SignerError> {
        let keys = self.secret_keys.read().map_err(|_| SignerError::KeyNotFound(label.to_owned()))?;
        keys.get(label).copied().ok_or_else(|| SignerError::KeyNotFound(label.to_owned()))
    }

    /// Fails, naming the mechanism, unless the token offers everything `algorithms` need
    /// (key generation and signing), so a token lacking one fails at start-up, not at first use.
    pub fn require_mechanisms(&self, algorithms: &[SigningAlgorithm]) -> Result<(), Pkcs11Error> {
        let offered = self.ctx.get_mechanism_list(self.slot()).ctx("C_GetMechanismList")?;
        for algorithm in algorithms {
            let needed: &[MechanismType] = match algorithm {
                SigningAlgorithm::EcdsaSha256 | SigningAlgorithm::EcdsaSha384 => {
                    &[MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA]
                }
                SigningAlgorithm::Ed25519 => &[MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, MechanismType::EDDSA],
                SigningAlgorithm::RsaPkcs1Sha256 => {
                    &[MechanismType::RSA_PKCS_KEY_PAIR_GEN, MechanismType::SHA256_RSA_PKCS]
                }
                SigningAlgorithm::RsaPssSha256 => {
                    &[MechanismType::RSA_PKCS_KEY_PAIR_GEN, MechanismType::SHA256_RSA_PKCS_PSS]
                }
            };
            if let Some(missing) = needed.iter().find(|m| !offered.contains(m)) {
                return Err(Pkcs11Error::MechanismMissing(format!("{missing} (needed for {algorithm:?})")));
            }
        }
        Ok(())
    }

    /// `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE` of a loaded private key.
    pub fn key_protection(&self, label: &str) -> Result<(bool, bool), SignerError> {
        let handle = self.handle(label)?.0;
        Ok(self.with_session(|s| {
            let attrs = s.get_attributes(handle, &[AttributeType::AlwaysSensitive, AttributeType::NeverExtractable])?;
            Ok(protection(&attrs))
        })?)
    }

    fn handle(&self, label: &str) -> Result<(ObjectHandle, KeyAlgorithm), SignerError> {
        let keys = self.keys.read().map_err(|_| SignerError::KeyNotFound(label.to_owned()))?;
        let key = keys.get(label).ok_or_else(|| SignerError::KeyNotFound(label.to_owned()))?;
        Ok((key.handle, key.info.algorithm))
    }
}

impl Signer for Pkcs11Signer {
    fn sign(&self, key: &str, algorithm: SigningAlgorithm, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let (handle, key_algorithm) = self.handle(key)?;
        if !algorithm.fits(key_algorithm) {
            return Err(SignerError::AlgorithmMismatch { key: key.to_owned(), algorithm });
        }
        let input = mechanism::sign_input(algorithm, message);
        let raw = self.with_key(key, handle, |s, h| s.sign(&input.mechanism, h, &input.data))?;
        Ok(mechanism::signature_output(algorithm, raw)?)
    }

    fn key_info(&self, key: &str) -> Result<KeyInfo, SignerError> {
        let keys = self.keys.read().map_err(|_| SignerError::KeyNotFound(key.to_owned()))?;
        keys.get(key).map(|k| k.info.clone()).ok_or_else(|| SignerError::KeyNotFound(key.to_owned()))
    }

    fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<Vec<u8>, SignerError> {
        let (handle, key_algorithm) = self.handle(key)?;
        if !key_algorithm.is_rsa() {
            return Err(SignerError::AlgorithmMismatch {
                key: key.to_owned(),
                algorithm: SigningAlgorithm::RsaPkcs1Sha256,
            });
        }
        Ok(self.with_key(key, handle, |s, h| s.decrypt(&Mechanism::RsaPkcs, h, ciphertext))?)
    }

    fn encrypt_secret(&self, key: &str, iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError> {
        let handle = self.secret_handle(key)?;
        Ok(self.with_session(|s| {
            let mut iv = iv.to_vec();
            let params = GcmParams::new(&mut iv, aad, Ulong::from(GCM_TAG_LEN as u64 * 8))?;
            s.encrypt(&Mechanism::AesGcm(params), handle, plaintext)
        })?)
    }

    fn decrypt_secret(
        &self,
        key: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let handle = self.secret_handle(key)?;
        Ok(self.with_session(|s| {
            let mut iv = iv.to_vec();
            let params = GcmParams::new(&mut iv, aad, Ulong::from(GCM_TAG_LEN as u64 * 8))?;
            s.decrypt(&Mechanism::AesGcm(params), handle, ciphertext).map(Zeroizing::new)
        })?)
    }
}

/// AES-256 key length in bytes.
const AES_KEY_LEN: u64 = 32;
/// AES-GCM IV length in bytes (96 bits, the recommended size).
pub const GCM_IV_LEN: usize = 12;
/// AES-GCM tag length in bytes (128 bits), appended to the ciphertext.
pub const GCM_TAG_LEN: usize = 16;

/// DER OID 1.3.101.112 (RFC 8410) as `CKA_EC_PARAMS`.
const ED25519_PARAMS_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// PrintableString "edwards25519" as `CKA_EC_PARAMS` (PKCS#11 v3.0 text).
const ED25519_PARAMS_NAME: [u8; 14] = *b"\x13\x0cedwards25519";

fn keygen_params(algorithm: KeyAlgorithm) -> (Mechanism<'static>, KeyType, Vec<Attribute>) {
    use der::Encode;
    let class = Attribute::Class(ObjectClass::PUBLIC_KEY);
    match algorithm {
        KeyAlgorithm::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            KeyType::EC_EDWARDS,
            vec![class, Attribute::KeyType(KeyType::EC_EDWARDS), Attribute::EcParams(ED25519_PARAMS_OID.to_vec())],
        ),
        a if a.is_rsa() => (
            Mechanism::RsaPkcsKeyPairGen,
            KeyType::RSA,
            vec![
                class,
                Attribute::KeyType(KeyType::RSA),
                Attribute::ModulusBits(a.rsa_bits().unwrap_or(2048).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
        ),
        a => {
            let params = a.curve_oid().and_then(|oid| oid.to_der().ok()).unwrap_or_default();
            (
                Mechanism::EccKeyPairGen,
                KeyType::EC,
                vec![class, Attribute::KeyType(KeyType::EC), Attribute::EcParams(params)],
            )
        }
    }
}

/// `CKA_ID` derived from the label, so that the certificate, public and private objects match.
fn key_id(label: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, label.as_bytes()).as_ref()[..8].to_vec()
}

fn find_one(session: &Session, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
        .ctx("C_FindObjects")?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Pkcs11Error::Ambiguous(label.to_owned())),
    }
}

fn protection(attrs: &[Attribute]) -> (bool, bool) {
    let mut out = (false, false);
    for a in attrs {
        match a {
            Attribute::AlwaysSensitive(v) => out.0 = *v,
            Attribute::NeverExtractable(v) => out.1 = *v,
            _ => {}
        }
    }
    out
}

fn check_non_exportable(session: &Session, private: ObjectHandle, label: &str) -> Result<(), Pkcs11Error> {
    let attrs = session
        .get_attributes(private, &[AttributeType::AlwaysSensitive, AttributeType::NeverExtractable])
        .ctx("C_GetAttributeValue")?;
    match protection(&attrs) {
        (true, true) => Ok(()),
        _ => Err(Pkcs11Error::KeyExportable(label.to_owned())),
    }
}

/// Reads a public key object's type and public values (never a private value).
fn read_public(session: &Session, public: ObjectHandle, label: &str) -> Result<KeyInfo, Pkcs11Error> {
    let attrs = session.get_attributes(public, &[AttributeType::KeyType]).ctx("C_GetAttributeValue(KEY_TYPE)")?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    let (algorithm, spki_der) = match key_type {
        Some(t) if t == KeyType::RSA => {
            let attrs = session
                .get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])
                .ctx("C_GetAttributeValue(MODULUS)")?;
            let (mut n, mut e) = (Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = v,
                    Attribute::PublicExponent(v) => e = v,
                    _ => {}
                }
            }
            let spki = public_key::rsa_spki(&n, &e)?;
            let algorithm = match n.len() * 8 {
                2048 => KeyAlgorithm::Rsa2048,
                3072 => KeyAlgorithm::Rsa3072,
                4096 => KeyAlgorithm::Rsa4096,
                _ => return Err(Pkcs11Error::Malformed("unsupported RSA modulus size")),
            };
            (algorithm, spki)
        }
        Some(t) if t == KeyType::EC || t == KeyType::EC_EDWARDS => {
            let attrs = session
                .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
                .ctx("C_GetAttributeValue(EC_POINT)")?;
            let (mut params, mut point) = (Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::EcParams(v) => params = v,
                    Attribute::EcPoint(v) => point = v,
                    _ => {}
                }
            }
            let algorithm = ec_algorithm(t == KeyType::EC_EDWARDS, &params)?;
            let point = public_key::unwrap_ec_point(&point, public_key::point_len(algorithm))?;
            (algorithm, ec_spki(algorithm, &point)?)
        }
        _ => return Err(Pkcs11Error::Malformed("unsupported key type")),
    };
    Ok(KeyInfo { label: label.to_owned(), algorithm, spki_der })
}

fn ec_algorithm(edwards: bool, params: &[u8]) -> Result<KeyAlgorithm, Pkcs11Error> {
    use der::Encode;
    if edwards {
        return Ok(KeyAlgorithm::Ed25519);
    }
    for a in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
        if a.curve_oid().and_then(|o| o.to_der().ok()).as_deref() == Some(params) {
            return Ok(a);
        }
    }
    Err(Pkcs11Error::Malformed("unsupported EC curve"))
}

fn is_session_failure(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::DeviceError
    )
}
