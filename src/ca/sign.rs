//! Sign: hand the TBS bytes to the HSM, verify the signature with the issuer's public key in
//! software, and assemble the certificate. A signature that does not verify never leaves here.

use der::{asn1::BitString, Encode};
use x509_cert::{certificate::TbsCertificate, Certificate};

use crate::{
    error::CaError,
    signer::{verify_spki, JobClass, SigningAlgorithm, SigningService},
};

/// Signs `tbs` (whose DER is `tbs_der`) with `key_label` and returns the DER certificate.
pub async fn sign_certificate(
    signing: &SigningService,
    key_label: &str,
    algorithm: SigningAlgorithm,
    issuer_spki_der: &[u8],
    tbs: TbsCertificate,
    tbs_der: Vec<u8>,
) -> Result<Vec<u8>, CaError> {
    let signature = signing.sign(JobClass::Issuance, key_label, algorithm, tbs_der.clone()).await?;
    verify_spki(issuer_spki_der, algorithm, &tbs_der, &signature)
        .map_err(|e| CaError::internal("HSM signature does not verify with the issuer's public key").with_source(e))?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm.algorithm_identifier(),
        signature: BitString::from_bytes(&signature)
            .map_err(|e| CaError::internal("signature encoding").with_source(e))?,
    };
    cert.to_der().map_err(|e| CaError::internal("certificate encoding").with_source(e))
}
