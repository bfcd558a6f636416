//! Row types exchanged with the ledger. They carry no behaviour beyond conversions.

use serde::Serialize;

use crate::policy::Tier;

/// Status of a certificate as stored (`expired` is derived from `not_after` when listing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertStatus {
    /// Issued and not revoked.
    Valid,
    /// Revoked (see `revocation_reason`).
    Revoked,
}

impl CertStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(Self::Valid),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A reservation: the ledger row that must exist before any signature.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Issuer id.
    pub issuer_id: String,
    /// Profile name.
    pub profile: String,
    /// Who asked (`cli:root`, `acme:account/12`, ...).
    pub requester: String,
    /// SHA-256 of the DER TBSCertificate, hex.
    pub tbs_sha256: String,
    /// The ACME order this issuance finalizes: claimed (`pending` → `processing`) with the
    /// reservation, `valid` with the commit, `pending` again on an abort.
    pub acme_order: Option<String>,
    /// The requester names one transaction (a SCEP transactionID): the reservation is refused
    /// (`Conflict`, nothing written) when the requester already has a committed reservation,
    /// one in flight (`reserved`, for ten minutes) or an approval request, so a transaction
    /// does not get a second certificate. Two reservations of one transaction racing on two
    /// connections are settled by a unique index (migration 15), not by the check.
    pub one_per_requester: bool,
}

/// An issued certificate with its inventory data.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Issuer id.
    pub issuer_id: String,
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Subject alternative names as `type:value`.
    pub sans: Vec<String>,
    /// SHA-256 of the DER certificate, hex.
    pub fingerprint_sha256: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Profile name.
    pub profile: String,
    /// Requester identity.
    pub requester: String,
    /// CLM owner.
    pub owner: String,
    /// CLM tier.
    pub tier: Tier,
    /// Stored status.
    pub status: CertStatus,
    /// RFC 5280 reason name, when revoked.
    pub revocation_reason: Option<String>,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Unix seconds, optional invalidity date.
    pub invalidity_date: Option<i64>,
    /// Serial of the certificate this one renews.
    pub renews_serial: Option<String>,
    /// Unix seconds, when an operator flagged it for early renewal.
    pub renew_early_at: Option<i64>,
    /// DER certificate.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// A CA certificate (root or issuer) stored in the ledger.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    /// `root` or the issuer id.
    pub id: String,
    /// Label of its key in the token.
    pub key_label: String,
    /// Subject DN.
    pub subject: String,
    /// DER certificate.
    pub der: Vec<u8>,
    /// The certificates above it (PEM, nearest first; empty for the root).
    pub chain_pem: String,
    /// Unix seconds.
    pub not_after: i64,
}

/// Filter for [`crate::ledger::Ledger::list_certificates`].
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    /// Only certificates expiring before this Unix time (and not yet expired before `now`).
    pub expiring_before: Option<i64>,
    /// Only this owner.
    pub owner: Option<String>,
    /// At most this many rows (newest first).
    pub limit: Option<i64>,
}

/// Result of a revocation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Newly revoked.
    Revoked,
    /// Already revoked earlier, with this reason.
    AlreadyRevoked(String),
    /// A `certificateHold` was lifted (`removeFromCRL`).
    HoldReleased,
}

/// Status of an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved; issuance in progress or failed.
    Approved,
    /// Refused.
    Denied,
    /// Approved and issued (`serial` is set).
    Issued,
}

impl ApprovalStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            "issued" => Some(Self::Issued),
            _ => None,
        }
    }
}

/// A request waiting for (or past) an operator's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Id shown by `privca approvals list`.
    pub id: i64,
    /// Profile requested.
    pub profile: String,
    /// Requester identity.
    pub requester: String,
    /// Owner override, if any.
    pub owner: Option<String>,
    /// Subject DN of the CSR.
    pub subject: String,
    /// SANs of the CSR.
    pub sans: Vec<String>,
    /// DER CSR.
    #[serde(skip)]
    pub csr_der: Vec<u8>,
    /// Status.
    pub status: ApprovalStatus,
    /// Denial reason.
    pub reason: Option<String>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Serial once issued.
    pub serial: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A new approval request.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// Profile requested.
    pub profile: String,
    /// Requester identity.
    pub requester: String,
    /// Owner override.
    pub owner: Option<String>,
    /// Subject DN.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// DER CSR.
    pub csr_der: Vec<u8>,
    /// The ACME order waiting for this approval: claimed (`processing`, with the approval id)
    /// in the same transaction.
    pub acme_order: Option<String>,
    /// Distinct approvers needed.
    pub approvals_required: u8,
}

/// One audit row as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    /// Insertion id.
    pub id: i64,
    /// Unix seconds.
    pub occurred_at: i64,
    /// Event name.
    pub event: String,
    /// Actor.
    pub actor: String,
    /// Certificate serial, if any.
    pub serial: Option<String>,
    /// Profile, if any.
    pub profile: Option<String>,
    /// Issuer id, if any.
    pub issuer_id: Option<String>,
    /// JSON detail.
    pub detail: String,
    /// Position in the chain (None until sealed).
    pub seq: Option<i64>,
    /// Hash of the previous row in the chain.
    pub prev_hash: Option<String>,
    /// This row's chain hash.
    pub hash: Option<String>,
}

/// A signed statement "the chain head at `seq` is `head_hash`".
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Chain position.
    pub seq: i64,
    /// Hash of row `seq`.
    pub head_hash: String,
    /// Unix seconds.
    pub signed_at: i64,
    /// Key that signed it.
    pub key_label: String,
    /// Signature over [`crate::audit::checkpoint_message`].
    pub signature: Vec<u8>,
}

/// A row to seal: its id and the chain values computed for it.
#[derive(Debug, Clone)]
pub struct SealedLink {
    /// Row id.
    pub id: i64,
    /// Assigned position.
    pub seq: i64,
    /// Previous hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}
