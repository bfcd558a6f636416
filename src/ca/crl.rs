//! CRL publication for one CA (`root` or an issuer): reserve the cRLNumber → stream the
//! revoked entries from the ledger into the encoder → sign the `TBSCertList` in the HSM →
//! verify → store as published. Complete CRLs list every revoked, unexpired certificate and
//! point at the delta (freshestCRL); a delta lists exactly the revocation changes since its
//! base complete CRL (revocation sequence numbers, in commit order), including holds lifted
//! with removeFromCRL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use privca_crl::{builder::certificate_list, CrlKind, CrlParams, CrlScope, RevokedEntry, TbsCrlBuilder};

use super::{chain, CertificateAuthority, Issuer, RevocationReason};
use crate::{
    audit::{AuditEvent, AuditKind},
    error::{CaError, ErrorKind},
    ledger::{self, LedgerError},
    signer::{verify_spki, JobClass},
};

/// What was published.
#[derive(Debug, Clone)]
pub struct PublishedInfo {
    /// `root` or the issuer id.
    pub ca: String,
    /// Delta or complete.
    pub delta: bool,
    /// cRLNumber.
    pub number: i64,
    /// Entries listed.
    pub entries: u64,
    /// DER size.
    pub size: usize,
}

/// Precomputed entries per database round trip when building a complete CRL.
const CHUNK: i64 = 100_000;

fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

impl CertificateAuthority {
    /// Signs and publishes a complete (`delta = false`) or delta CRL for `id`.
    #[tracing::instrument(skip(self))]
    pub async fn publish_crl(&self, id: &str, delta: bool) -> Result<PublishedInfo, CaError> {
        let issuer = self
            .ca_by_id(id)
            .ok_or_else(|| CaError::new(ErrorKind::NotFound, format!("no CA `{id}` to publish a CRL for")))?;
        let ledger = self.ledger();
        let cfg = &self.config().crl;
        let base = if delta {
            let full = ledger.latest_crl(id, ledger::CrlKind::Full, false).await?;
            Some(full.ok_or_else(|| {
                CaError::new(ErrorKind::Conflict, format!("{id}: no complete CRL to base a delta on"))
            })?)
        } else {
            None
        };
        let now = ledger::now();
        let validity = if delta { cfg.delta_validity } else { cfg.full_validity };
        let next = now + validity.as_secs() as i64;
        let kind = if delta { ledger::CrlKind::Delta } else { ledger::CrlKind::Full };
        let event = |k| AuditEvent::new(k, "system:privca").issuer(id).detail(serde_json::json!({ "delta": delta }));
        let reservation = ledger
            .reserve_crl(id, kind, base.as_ref().map(|b| b.number), now, next, &event(AuditKind::CrlReserve))
            .await?;
        tracing::debug!(ca = id, delta, number = reservation.number, "CRL generation started");
        match self.sign_crl(issuer, id, delta, base.as_ref(), reservation, now, next).await {
            Ok((der, entries)) => {
                let ev = event(AuditKind::CrlPublished).detail(serde_json::json!({
                    "delta": delta, "crl_number": reservation.number, "entries": entries, "sha256": super::x509::sha256_hex(&der),
                }));
                ledger.publish_crl(id, reservation.number, &der, entries as i64, &ev).await?;
                tracing::info!(ca = id, delta, number = reservation.number, entries, "CRL published");
                let kind = if delta { "delta" } else { "full" };
                metrics::counter!("privca_crls_published_total", "ca" => id.to_owned(), "kind" => kind).increment(1);
                metrics::gauge!("privca_crl_number", "ca" => id.to_owned(), "kind" => kind)
                    .set(reservation.number as f64);
                Ok(PublishedInfo { ca: id.to_owned(), delta, number: reservation.number, entries, size: der.len() })
            }
            Err(e) => {
                let ev = event(AuditKind::Failed)
                    .detail(serde_json::json!({ "crl_number": reservation.number, "error": e.detail() }));
                if let Err(abort) = ledger.abort_crl(id, reservation.number, &ev).await {
                    tracing::error!(error = %abort, "could not mark the CRL aborted");
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn sign_crl(
        &self,
        issuer: &Issuer,
        id: &str,
        delta: bool,
        base: Option<&ledger::CrlRecord>,
        reservation: ledger::CrlReservation,
        now: i64,
        next: i64,
    ) -> Result<(Vec<u8>, u64), CaError> {
        let urls = &self.config().urls;
        let params = CrlParams {
            issuer: issuer.cert.tbs_certificate.subject.clone(),
            signature: issuer.signature.algorithm_identifier(),
            this_update: at(now),
            next_update: at(next),
            number: reservation.number as u64,
            authority_key_id: issuer.ski.clone(),
            distribution_point: chain::crl_url(urls, id),
            scope: if id == "root" { CrlScope::CaCerts } else { CrlScope::UserCerts },
            kind: match base {
                Some(b) => CrlKind::Delta { base: b.number as u64 },
                None => CrlKind::Full { freshest: Some(chain::delta_crl_url(urls, id)) },
            },
        };
        let mut builder = TbsCrlBuilder::new(params);
        let after = base.map(|b| b.revocation_seq).unwrap_or(0);
        let upto = reservation.revocation_seq;
        let not_after_min = if self.config().crl.keep_expired { 0 } else { now };
        let ledger = self.ledger();
        if !delta {
            // Complete CRLs concatenate the entries precomputed at revocation, in large chunks.
            let mut cursor = 0;
            while let Some((entries, n, last)) =
                ledger.revoked_entries_chunk(id, cursor, upto, not_after_min, CHUNK).await?
            {
                builder.push_encoded(&entries, n as u64);
                cursor = last;
            }
        }
        // Deltas (small, and listing lifted holds) and any entry not precomputed go row by row.
        ledger.stream_revoked(id, after, upto, not_after_min, !delta, |row| push(&mut builder, delta, &row)).await?;
        let entries = builder.len();
        let tbs = builder.finish().map_err(|e| CaError::internal("CRL encoding").with_source(e))?;
        let signature =
            self.signing().sign(JobClass::Issuance, &issuer.key_label, issuer.signature, tbs.clone()).await?;
        verify_spki(&issuer.spki_der, issuer.signature, &tbs, &signature)
            .map_err(|e| CaError::internal("HSM CRL signature does not verify").with_source(e))?;
        let der = certificate_list(&tbs, &issuer.signature.algorithm_identifier(), &signature)
            .map_err(|e| CaError::internal("CRL encoding").with_source(e))?;
        Ok((der, entries))
    }
}

/// The DER CRL entry of a certificate revoked now (stored with the revocation).
pub fn crl_entry(
    serial_hex: &str,
    at_secs: i64,
    reason: RevocationReason,
    invalidity_date: Option<i64>,
) -> Result<Vec<u8>, CaError> {
    let serial = hex::decode(serial_hex)
        .map_err(|_| CaError::bad_request(format!("`{serial_hex}` is not a hexadecimal serial")))?;
    let entry = RevokedEntry {
        serial: &serial,
        revocation_time: at(at_secs),
        reason: Some(reason.code()),
        invalidity_date: invalidity_date.map(at),
    };
    privca_crl::builder::encode_entry(&entry).map_err(|e| CaError::internal("CRL entry").with_source(e))
}

fn push(builder: &mut TbsCrlBuilder, delta: bool, row: &ledger::RevokedRow) -> Result<(), CaError> {
    let serial =
        hex::decode(&row.serial).map_err(|_| CaError::from(LedgerError::Corrupt(format!("serial {}", row.serial))))?;
    let reason = match (row.revoked, row.reason.as_deref()) {
        (true, Some(name)) => name.parse::<RevocationReason>().ok().map(RevocationReason::code),
        (true, None) => None,
        // Released from hold: only deltas say so (removeFromCRL, RFC 5280 §5.3.1).
        (false, _) if delta => Some(RevocationReason::RemoveFromCrl.code()),
        (false, _) => return Ok(()),
    };
    let entry = RevokedEntry {
        serial: &serial,
        revocation_time: at(row.revoked_at.unwrap_or(0)),
        reason,
        invalidity_date: row.invalidity_date.map(at),
    };
    builder.push(&entry).map_err(|e| CaError::internal("CRL entry").with_source(e))
}
