//! The admin listener's client-certificate request. [`Deferred`] asks for a certificate
//! (with `admin.client_ca`'s subjects as hints), never requires one, checks that the client
//! holds the certificate's key (the handshake signature, as usual) and accepts the chain
//! without judging it, so that the admin authentication ([`crate::admin::auth::client_cert`])
//! verifies it against `admin.client_ca` and can answer an unverified or unmapped certificate
//! with an audited 401 instead of a bare TLS alert. On this listener only, the
//! [`super::listener::ClientChain`] of a request is therefore not yet verified: nothing but the
//! admin authentication reads it there.

use std::sync::Arc;

use rustls::{
    client::danger::HandshakeSignatureValid,
    pki_types::{CertificateDer, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

/// Asks for a client certificate; proof of possession checked, the chain left to the caller.
#[derive(Debug)]
pub struct Deferred(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Deferred {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
