//! Wiring: open the token, the ledger and the CA from a validated [`Config`]. Every CLI
//! command and the server start here, so start-up checks happen in one place.

use std::sync::Arc;

use crate::{
    audit::CHECKPOINT_KEY,
    ca::{
        bootstrap::{self, BootstrapReport, TLS_KEY},
        key_label, CertificateAuthority,
    },
    config::Config,
    error::{CaError, ErrorKind},
    ledger::Ledger,
    sealing::SECRETS_WRAP_KEY,
    signer::{pkcs11::Pkcs11Signer, SigningService},
};

/// Opened services.
#[derive(Clone)]
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The token (key generation and lookup).
    pub token: Arc<Pkcs11Signer>,
    /// Async signing front.
    pub signing: SigningService,
    /// The ledger.
    pub ledger: Ledger,
}

impl App {
    /// Opens the token (creating the dev token when configured), loads every configured key
    /// that exists, and connects to the ledger (running migrations).
    pub async fn open(config: Config) -> Result<App, CaError> {
        let config = Arc::new(config);
        let hsm = config.hsm.clone();
        let token = tokio::task::spawn_blocking(move || Pkcs11Signer::open(&hsm))
            .await
            .map_err(|e| CaError::internal("token task").with_source(e))?
            .map_err(|e| CaError::new(ErrorKind::Unavailable, "cannot open the PKCS#11 token").with_source(e))?;
        let mut labels = vec![CHECKPOINT_KEY.to_owned(), TLS_KEY.to_owned(), key_label("root")];
        labels.extend(config.issuers.iter().map(|i| key_label(&i.id)));
        labels.push(bootstrap::ocsp_key_label("root"));
        labels.extend(config.issuers.iter().map(|i| bootstrap::ocsp_key_label(&i.id)));
        for label in &labels {
            token
                .load_key(label)
                .map_err(|e| CaError::new(ErrorKind::Unavailable, format!("cannot read key {label}")).with_source(e))?;
        }
        token.load_secret_key(SECRETS_WRAP_KEY).map_err(|e| {
            CaError::new(ErrorKind::Unavailable, format!("cannot read key {SECRETS_WRAP_KEY}")).with_source(e)
        })?;
        let mut algorithms = vec![config.root.signature];
        algorithms.extend(config.issuers.iter().map(|i| i.ca.signature));
        algorithms.push(crate::signer::SigningAlgorithm::for_key(config.audit.checkpoint_key, false));
        token.require_mechanisms(&algorithms).map_err(|e| {
            CaError::new(ErrorKind::Unavailable, "the token cannot serve this configuration").with_source(e)
        })?;
        let token = Arc::new(token);
        // Never dropped: the signing threads may outlive `App`, and closing sessions from one
        // of them while the main thread exits the process crashes SoftHSM2. The main thread
        // finalises the module instead (`signer::pkcs11::finalize`).
        std::mem::forget(Arc::clone(&token));
        let signing = SigningService::with_capacity(token.clone(), config.hsm.sessions, config.hsm.queue_capacity);
        if !config.database.is_postgres() {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| CaError::internal("cannot create the data directory").with_source(e))?;
        }
        let url = config
            .database_url()
            .map_err(|e| CaError::new(ErrorKind::Unavailable, "cannot read the database password").with_source(e))?;
        let ledger =
            Ledger::connect_with(url.expose(), config.database.ca_file.as_deref(), config.database.max_connections)
                .await
                .map_err(|e| CaError::new(ErrorKind::Unavailable, "cannot open the ledger").with_source(e))?;
        Ok(App { config, token, signing, ledger })
    }

    /// Creates missing keys and CA certificates (idempotent), and seals the EAB keys an
    /// earlier version stored in the clear.
    pub async fn bootstrap(&self, write_csrs: bool) -> Result<BootstrapReport, CaError> {
        let report = bootstrap::bootstrap(&self.config, &self.ledger, &self.token, &self.signing, write_csrs).await?;
        crate::sealing::seal_clear_eab_keys(&self.ledger, &self.signing).await?;
        self.seal().await;
        Ok(report)
    }

    /// The CA over the ledger's CA certificates.
    pub async fn ca(&self) -> Result<CertificateAuthority, CaError> {
        CertificateAuthority::open(self.config.clone(), self.ledger.clone(), self.signing.clone()).await
    }

    /// Links new audit rows into the chain and checkpoints it; failures are logged.
    pub async fn seal(&self) {
        match crate::audit::seal(&self.ledger, &self.signing).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "audit rows sealed"),
            Err(e) => tracing::error!(error = %e, "audit sealing failed"),
        }
    }
}
