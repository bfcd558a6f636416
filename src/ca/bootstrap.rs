//! First-run initialisation (`privca init`, also run by `privca serve`): keys in the token
//! (the AES key that seals the ledger's secrets, [`SECRETS_WRAP_KEY`], among them),
//! the self-signed root, the intermediates signed by the root (all signed in the HSM, each with
//! a reservation row), and the PEM files in the data directory. Idempotent: a second run finds
//! every key and certificate and changes nothing. External issuers get a CSR instead
//! (`privca init --issuer-csr`, then `privca import-issuer`).

use std::{path::PathBuf, time::SystemTime};

use der::{asn1::BitString, Decode, Encode};
use x509_cert::{
    certificate::{TbsCertificate, Version},
    ext::pkix::{
        constraints::name::{GeneralSubtree, NameConstraints},
        name::GeneralName,
        BasicConstraints, KeyUsage, KeyUsages,
    },
    name::Name,
    request::{CertReq, CertReqInfo},
    serial_number::SerialNumber,
    time::Validity,
    Certificate,
};

use super::{chain, key_label, prepare::random_serial, sign::sign_certificate, x509, Issuer};
use crate::{
    audit::{AuditEvent, AuditKind, CHECKPOINT_KEY},
    config::{scep::RaKeys, CaKeyConfig, Config, IssuerConfig, NameConstraintsConfig},
    error::CaError,
    ledger::{CaCertificate, Ledger, Reservation},
    sealing::SECRETS_WRAP_KEY,
    signer::{
        pkcs11::{KeyPurpose, Pkcs11Signer},
        JobClass, KeyAlgorithm, SigningService,
    },
};

/// Label of the key behind privca's own HTTPS certificate.
pub const TLS_KEY: &str = "privca-tls";

/// Label of the delegated OCSP responder key of CA `id`.
pub fn ocsp_key_label(id: &str) -> String {
    format!("privca-ocsp-{id}")
}

/// Label of the SCEP RA key (RSA-2048): signs CertReps, and with `scep.ra_keys = "shared"`
/// also decrypts request envelopes.
pub const SCEP_RA_KEY: &str = "privca-scep-ra";

/// Label of the SCEP RA decryption key (RSA-2048, `CKA_DECRYPT` only) with
/// `scep.ra_keys = "separate"`.
pub const SCEP_RA_ENCRYPTION_KEY: &str = "privca-scep-ra-encryption";

/// What `init` found or did.
#[derive(Debug, Default)]
pub struct BootstrapReport {
    /// Keys generated in this run.
    pub generated_keys: Vec<String>,
    /// CA certificates created in this run.
    pub created_certificates: Vec<String>,
    /// CSRs written for external issuers.
    pub csrs: Vec<PathBuf>,
    /// `<data-dir>/root.pem`.
    pub root_pem: PathBuf,
}

/// Ensures every key and CA certificate exists; returns what changed.
pub async fn bootstrap(
    config: &Config,
    ledger: &Ledger,
    token: &Pkcs11Signer,
    signing: &SigningService,
    write_csrs: bool,
) -> Result<BootstrapReport, CaError> {
    let mut report = BootstrapReport::default();
    ensure_key(token, CHECKPOINT_KEY, config.audit.checkpoint_key, KeyPurpose::Sign, &mut report)?;
    if token.ensure_secret_key(SECRETS_WRAP_KEY).map_err(crate::signer::SignerError::from)? {
        report.generated_keys.push(SECRETS_WRAP_KEY.to_owned());
    }
    ensure_key(token, TLS_KEY, KeyAlgorithm::EcdsaP256, KeyPurpose::Sign, &mut report)?;
    ensure_key(token, &key_label("root"), config.root.key, KeyPurpose::Sign, &mut report)?;
    let root = match ledger.ca_certificate("root").await? {
        Some(c) => Issuer::from_der("root", &c.der, "", config.root.signature)?,
        None => {
            let der = create_root(config, ledger, signing).await?;
            report.created_certificates.push("root".into());
            Issuer::from_der("root", &der, "", config.root.signature)?
        }
    };
    check_matches_token(&root, signing)?;
    for ic in &config.issuers {
        let label = key_label(&ic.id);
        ensure_key(token, &label, ic.ca.key, KeyPurpose::Sign, &mut report)?;
        if let Some(c) = ledger.ca_certificate(&ic.id).await? {
            check_matches_token(&Issuer::from_der(&ic.id, &c.der, &c.chain_pem, ic.ca.signature)?, signing)?;
            continue;
        }
        if ic.external {
            let path = config.data_dir.join(format!("{}.csr.pem", ic.id));
            if write_csrs || !path.exists() {
                let csr = issuer_csr(ic, signing).await?;
                chain::write_if_changed(&path, &csr).map_err(io)?;
            }
            report.csrs.push(path);
            continue;
        }
        create_intermediate(config, ic, &root, ledger, signing).await?;
        report.created_certificates.push(ic.id.clone());
    }
    for id in std::iter::once("root").chain(config.issuers.iter().map(|i| i.id.as_str())) {
        ensure_key(token, &ocsp_key_label(id), KeyAlgorithm::EcdsaP256, KeyPurpose::Sign, &mut report)?;
    }
    match config.scep.ra_keys {
        RaKeys::Separate => {
            ensure_key(token, SCEP_RA_KEY, KeyAlgorithm::Rsa2048, KeyPurpose::Sign, &mut report)?;
            ensure_key(token, SCEP_RA_ENCRYPTION_KEY, KeyAlgorithm::Rsa2048, KeyPurpose::Decrypt, &mut report)?;
        }
        RaKeys::Shared => {
            ensure_key(token, SCEP_RA_KEY, KeyAlgorithm::Rsa2048, KeyPurpose::SignAndDecrypt, &mut report)?;
        }
    }
    report.root_pem = write_files(config, ledger).await?;
    Ok(report)
}

fn io(e: std::io::Error) -> CaError {
    CaError::internal("cannot write to the data directory").with_source(e)
}

fn ensure_key(
    token: &Pkcs11Signer,
    label: &str,
    algorithm: KeyAlgorithm,
    purpose: KeyPurpose,
    report: &mut BootstrapReport,
) -> Result<(), CaError> {
    let loaded = token.load_key(label).map_err(crate::signer::SignerError::from)?;
    match loaded {
        Some(info) if info.algorithm == algorithm => Ok(()),
        Some(info) => Err(CaError::internal(format!(
            "key {label} in the token is {}, but the config asks for {}",
            info.algorithm.name(),
            algorithm.name()
        ))),
        None => {
            token.generate_key(label, algorithm, purpose).map_err(crate::signer::SignerError::from)?;
            report.generated_keys.push(label.to_owned());
            Ok(())
        }
    }
}

fn check_matches_token(issuer: &Issuer, signing: &SigningService) -> Result<(), CaError> {
    if signing.key_info(&issuer.key_label)?.spki_der != issuer.spki_der {
        return Err(CaError::internal(format!(
            "CA certificate {} does not match key {} in the token",
            issuer.id, issuer.key_label
        )));
    }
    Ok(())
}

fn ca_validity(ca: &CaKeyConfig, cap: Option<SystemTime>) -> Result<Validity, CaError> {
    let now = SystemTime::now();
    let mut not_after = now + ca.validity;
    if let Some(cap) = cap {
        not_after = not_after.min(cap);
    }
    Ok(Validity {
        not_before: x509::x509_time(now.checked_sub(std::time::Duration::from_secs(60)).unwrap_or(now))?,
        not_after: x509::x509_time(not_after)?,
    })
}

async fn create_root(config: &Config, ledger: &Ledger, signing: &SigningService) -> Result<Vec<u8>, CaError> {
    let label = key_label("root");
    let spki_der = signing.key_info(&label)?.spki_der;
    let ski = x509::key_identifier(&spki_der)?;
    let extensions = vec![
        x509::extension(&BasicConstraints { ca: true, path_len_constraint: None }, true)?,
        x509::extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature), true)?,
        x509::ski_extension(&ski)?,
    ];
    let tbs =
        ca_tbs(&config.root, config.root.subject.clone(), &spki_der, ca_validity(&config.root, None)?, extensions)?;
    sign_ca(ledger, signing, "root", &label, config.root.signature, &spki_der, tbs, String::new()).await
}

async fn create_intermediate(
    config: &Config,
    ic: &IssuerConfig,
    root: &Issuer,
    ledger: &Ledger,
    signing: &SigningService,
) -> Result<Vec<u8>, CaError> {
    let spki_der = signing.key_info(&key_label(&ic.id))?.spki_der;
    let mut extensions = vec![
        x509::extension(&BasicConstraints { ca: true, path_len_constraint: Some(0) }, true)?,
        x509::extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature), true)?,
        x509::ski_extension(&x509::key_identifier(&spki_der)?)?,
        x509::aki_extension(&root.ski)?,
        x509::cdp_extension(&chain::crl_url(&config.urls, "root"))?,
    ];
    if let Some(aia) = x509::aia_extension(None, Some(&chain::ca_issuers_url(&config.urls, "root")))? {
        extensions.push(aia);
    }
    if let Some(nc) = &ic.name_constraints {
        extensions.push(x509::extension(&name_constraints(nc)?, true)?);
    }
    let mut tbs =
        ca_tbs(&ic.ca, ic.ca.subject.clone(), &spki_der, ca_validity(&ic.ca, Some(root.not_after))?, extensions)?;
    tbs.issuer = root.cert.tbs_certificate.subject.clone();
    tbs.signature = root.signature.algorithm_identifier();
    sign_ca(ledger, signing, &ic.id, &root.key_label, root.signature, &root.spki_der, tbs, x509::pem(&root.der)).await
}

fn ca_tbs(
    ca: &CaKeyConfig,
    subject: Name,
    spki_der: &[u8],
    validity: Validity,
    extensions: Vec<x509_cert::ext::Extension>,
) -> Result<TbsCertificate, CaError> {
    let serial = random_serial()?;
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(|e| CaError::internal("serial").with_source(e))?,
        signature: ca.signature.algorithm_identifier(),
        issuer: subject.clone(),
        validity,
        subject,
        subject_public_key_info: spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| CaError::internal("SPKI").with_source(e))?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// Reserve → sign → verify → store, for a CA certificate.
#[allow(clippy::too_many_arguments)]
async fn sign_ca(
    ledger: &Ledger,
    signing: &SigningService,
    id: &str,
    signing_key: &str,
    algorithm: crate::signer::SigningAlgorithm,
    signer_spki: &[u8],
    tbs: TbsCertificate,
    chain_above_pem: String,
) -> Result<Vec<u8>, CaError> {
    let tbs_der = tbs.to_der().map_err(|e| CaError::internal("TBS encoding").with_source(e))?;
    let serial = hex::encode(tbs.serial_number.as_bytes());
    let actor = "system:privca";
    let profile = if id == "root" { "ca-root" } else { "ca-intermediate" };
    let issuer_id = "root";
    let event = |kind| AuditEvent::new(kind, actor).serial(serial.clone()).profile(profile).issuer(issuer_id);
    let tbs_sha256 = x509::sha256_hex(&tbs_der);
    let reservation = Reservation {
        serial: serial.clone(),
        issuer_id: issuer_id.into(),
        profile: profile.into(),
        requester: actor.into(),
        tbs_sha256: tbs_sha256.clone(),
        acme_order: None,
        one_per_requester: false,
    };
    ledger
        .reserve_issuance(
            &reservation,
            &event(AuditKind::Reserve).detail(serde_json::json!({ "tbs_sha256": tbs_sha256 })),
        )
        .await?;
    let subject = tbs.subject.to_string();
    let not_after = x509::unix(&tbs.validity.not_after);
    let der = match sign_certificate(signing, signing_key, algorithm, signer_spki, tbs, tbs_der).await {
        Ok(der) => der,
        Err(e) => {
            let ev = event(AuditKind::Failed).detail(serde_json::json!({ "stage": "sign", "error": e.detail() }));
            ledger.abort_reservation(&serial, e.detail(), &ev, None).await?;
            return Err(e);
        }
    };
    let stored = CaCertificate {
        id: id.into(),
        key_label: key_label(id),
        subject,
        der: der.clone(),
        chain_pem: chain_above_pem,
        not_after,
    };
    let ev = event(AuditKind::CaCertificate)
        .detail(serde_json::json!({ "ca": id, "fingerprint_sha256": x509::sha256_hex(&der) }));
    ledger.store_ca_certificate(&stored, Some(&serial), &ev).await?;
    tracing::info!(ca = id, serial = %serial, "CA certificate created");
    Ok(der)
}

fn name_constraints(nc: &NameConstraintsConfig) -> Result<NameConstraints, CaError> {
    let subtrees = |dns: &[String], ip: &[String], email: &[String]| -> Result<Option<Vec<GeneralSubtree>>, CaError> {
        let mut out = Vec::new();
        for d in dns {
            out.push(subtree(GeneralName::DnsName(ia5(d)?)));
        }
        for e in email {
            out.push(subtree(GeneralName::Rfc822Name(ia5(e)?)));
        }
        for cidr in ip {
            out.push(subtree(GeneralName::IpAddress(cidr_octets(cidr)?)));
        }
        Ok((!out.is_empty()).then_some(out))
    };
    Ok(NameConstraints {
        permitted_subtrees: subtrees(&nc.permitted_dns, &nc.permitted_ip, &nc.permitted_email)?,
        excluded_subtrees: subtrees(&nc.excluded_dns, &nc.excluded_ip, &nc.excluded_email)?,
    })
}

fn subtree(base: GeneralName) -> GeneralSubtree {
    GeneralSubtree { base, minimum: 0, maximum: None }
}

fn ia5(s: &str) -> Result<der::asn1::Ia5String, CaError> {
    der::asn1::Ia5String::new(s).map_err(|_| CaError::policy(format!("name constraint `{s}` is not ASCII")))
}

/// `10.0.0.0/8` → address ‖ mask octets (RFC 5280 §4.2.1.10).
fn cidr_octets(cidr: &str) -> Result<der::asn1::OctetString, CaError> {
    let bad = || CaError::policy(format!("name constraint `{cidr}` is not CIDR"));
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    let addr_bytes = match addr {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    let bits = addr_bytes.len() as u32 * 8;
    if len > bits {
        return Err(bad());
    }
    let mask: Vec<u8> = (0..addr_bytes.len() as u32)
        .map(|i| {
            let ones = len.saturating_sub(i * 8).min(8);
            (0xffu16 << (8 - ones)) as u8
        })
        .collect();
    let mut out: Vec<u8> = addr_bytes.iter().zip(&mask).map(|(a, m)| a & m).collect();
    out.extend(mask);
    der::asn1::OctetString::new(out).map_err(|_| bad())
}

/// A PKCS#10 request for an external issuer's key, signed in the HSM.
async fn issuer_csr(ic: &IssuerConfig, signing: &SigningService) -> Result<String, CaError> {
    let label = key_label(&ic.id);
    let spki_der = signing.key_info(&label)?.spki_der;
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: ic.ca.subject.clone(),
        public_key: spki::SubjectPublicKeyInfoOwned::from_der(&spki_der)
            .map_err(|e| CaError::internal("SPKI").with_source(e))?,
        attributes: Default::default(),
    };
    let info_der = info.to_der().map_err(|e| CaError::internal("CSR encoding").with_source(e))?;
    let signature = signing.sign(JobClass::Issuance, &label, ic.ca.signature, info_der).await?;
    let csr = CertReq {
        info,
        algorithm: ic.ca.signature.algorithm_identifier(),
        signature: BitString::from_bytes(&signature).map_err(|e| CaError::internal("CSR signature").with_source(e))?,
    };
    let der = csr.to_der().map_err(|e| CaError::internal("CSR encoding").with_source(e))?;
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der)
        .map_err(|e| CaError::internal("PEM").with_source(der::Error::from(e)))
}

/// Installs the certificate an external root signed for issuer `id` (PEM: the issuer first,
/// then the chain above it). The certificate must carry the token key and be a CA.
pub async fn import_issuer(
    config: &Config,
    ledger: &Ledger,
    signing: &SigningService,
    id: &str,
    pem: &str,
) -> Result<(), CaError> {
    let ic = config.issuer(id).ok_or_else(|| CaError::bad_request(format!("no [[issuer]] with id `{id}`")))?;
    if !ic.external {
        return Err(CaError::bad_request(format!("issuer {id} is not `external = true`")));
    }
    if ledger.ca_certificate(id).await?.is_some() {
        return Err(CaError::new(crate::error::ErrorKind::Conflict, format!("issuer {id} already has a certificate")));
    }
    let certs = x509::pem_certificates(pem)?;
    let Some((leaf, above)) = certs.split_first() else {
        return Err(CaError::bad_request("no CERTIFICATE in the file"));
    };
    let issuer = Issuer::from_der(id, leaf, "", ic.ca.signature)?;
    check_matches_token(&issuer, signing)
        .map_err(|_| CaError::bad_request(format!("the certificate is not for key {}", issuer.key_label)))?;
    let is_ca = issuer.cert.tbs_certificate.extensions.iter().flatten().any(|e| {
        e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS
            && BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca)
    });
    if !is_ca {
        return Err(CaError::bad_request("the certificate is not a CA certificate (basicConstraints cA)"));
    }
    if let Some(parent) = above.first() {
        verify_issued_by(leaf, parent)?;
    }
    let chain_pem: String = above.iter().map(|d| x509::pem(d)).collect();
    let stored = CaCertificate {
        id: id.into(),
        key_label: key_label(id),
        subject: issuer.cert.tbs_certificate.subject.to_string(),
        der: leaf.clone(),
        chain_pem,
        not_after: x509::unix(&issuer.cert.tbs_certificate.validity.not_after),
    };
    let ev = AuditEvent::new(AuditKind::CaCertificate, crate::ca::Requester::cli().to_string())
        .issuer(id)
        .detail(serde_json::json!({ "ca": id, "imported": true, "fingerprint_sha256": x509::sha256_hex(leaf) }));
    ledger.store_ca_certificate(&stored, None, &ev).await?;
    write_files(config, ledger).await?;
    Ok(())
}

fn verify_issued_by(child_der: &[u8], parent_der: &[u8]) -> Result<(), CaError> {
    let child = Certificate::from_der(child_der).map_err(|e| CaError::bad_request("bad certificate").with_source(e))?;
    let parent =
        Certificate::from_der(parent_der).map_err(|e| CaError::bad_request("bad parent certificate").with_source(e))?;
    let tbs = child.tbs_certificate.to_der().map_err(|e| CaError::bad_request("bad certificate").with_source(e))?;
    let parent_spki = parent
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| CaError::bad_request("bad parent").with_source(e))?;
    let sig = child.signature.as_bytes().unwrap_or_default();
    let oid = child.signature_algorithm.oid;
    let algorithm = [
        crate::signer::SigningAlgorithm::EcdsaSha256,
        crate::signer::SigningAlgorithm::EcdsaSha384,
        crate::signer::SigningAlgorithm::Ed25519,
        crate::signer::SigningAlgorithm::RsaPkcs1Sha256,
        crate::signer::SigningAlgorithm::RsaPssSha256,
    ]
    .into_iter()
    .find(|a| a.algorithm_identifier().oid == oid)
    .ok_or_else(|| CaError::bad_request(format!("unsupported signature algorithm {oid}")))?;
    crate::signer::verify_spki(&parent_spki, algorithm, &tbs, sig)
        .map_err(|_| CaError::bad_request("the certificate is not signed by the next certificate in the file"))
}

/// Writes `root.pem`, `<id>.pem` and `<id>-chain.pem` from the ledger. Returns the root path.
pub async fn write_files(config: &Config, ledger: &Ledger) -> Result<PathBuf, CaError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(io)?;
    let root_path = dir.join("root.pem");
    if let Some(root) = ledger.ca_certificate("root").await? {
        chain::write_if_changed(&root_path, &x509::pem(&root.der)).map_err(io)?;
    }
    for ic in &config.issuers {
        if let Some(c) = ledger.ca_certificate(&ic.id).await? {
            let own = x509::pem(&c.der);
            chain::write_if_changed(&dir.join(format!("{}.pem", ic.id)), &own).map_err(io)?;
            chain::write_if_changed(&dir.join(format!("{}-chain.pem", ic.id)), &format!("{own}{}", c.chain_pem))
                .map_err(io)?;
        }
    }
    Ok(root_path)
}
