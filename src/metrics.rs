//! Prometheus metrics, exposed at `/metrics` on the admin listener by `privca serve`.
//!
//! Code records through the `metrics` facade (`counter!`, `gauge!`); without an installed
//! recorder (CLI commands) those calls do nothing. Names:
//!
//! * `privca_hsm_operations_total{op, result}`: signatures and decryptions through the signer.
//! * `privca_hsm_queue_depth{class}`, `privca_hsm_queue_capacity{class}`: signing jobs waiting
//!   per priority class, and how many may; `privca_hsm_queue_rejected_total{class}`: jobs
//!   refused as busy; `privca_hsm_jobs_skipped_total`: jobs dropped because their caller had
//!   gone (see `signer`'s queue).
//! * `privca_ocsp_nonce_fallback_total{reason}`: nonces left out ("rate": over
//!   `ocsp.nonce_signatures_per_second`; "busy": the Nonce queue was full).
//! * `privca_certificates_issued_total{profile}`, `privca_issuance_refused_total`.
//! * `privca_crls_published_total{ca, kind}`, `privca_crl_number{ca, kind}`.
//! * `privca_ocsp_responses_total{source}`: memory, ledger, signed (cache miss), fresh (nonce or
//!   several CertIDs).
//! * `privca_ocsp_presigned_total`, `privca_ocsp_presign_backlog`: responses waiting at the
//!   start of the pre-signer's last period (at most its budget; equal to it means behind).
//! * CLM, refreshed after each policy run: `privca_clm_certificates{status, tier, issuer}`,
//!   `privca_clm_earliest_expiry_seconds{tier}`, `privca_clm_outbox_messages{channel, state}`;
//!   and `privca_clm_notifications_total{channel, result}` (sent, failed, dead) per delivery,
//!   `privca_clm_policy_evaluated_total`.
//! * `privca_discovery_endpoints_total{result}`: endpoints scanned ("certificate", "closed",
//!   "error"); `privca_discovery_findings_total{finding}`: findings reported;
//!   `privca_clm_deployment_checks_total{result}`: deployment checks after renewals ("ok",
//!   "failed").

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide recorder; `None` if one is already installed.
pub fn install() -> Option<PrometheusHandle> {
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            None
        }
    }
}
