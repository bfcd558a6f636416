//! `/certificates`: the inventory (privca-issued, imported and discovered certificates) listed
//! with filters, a sort and cursor pagination, one certificate with its details and endpoints, its
//! chain as PEM or DER, issuance from a CSR under a profile (through the approval gate) and
//! revocation. A caller of role `owner` sees and acts on its own certificates only.

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Body, Params};
use crate::{
    admin::{
        auth::{Action, Principal},
        problem::Problem,
        sort, AdminState,
    },
    ca::{IssuanceRequest, IssueOutcome, RevocationReason},
    ledger::{InventoryFilter, InventoryItem, InventoryStatus, RevokeOutcome},
    policy::Tier,
};

/// Most rows per page.
pub const MAX_PAGE: u32 = 500;

/// Filters of `GET /certificates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// valid, expiring, expired, revoked or superseded.
    pub status: Option<String>,
    /// A tier of `[clm.tiers]` (customer-facing, network-critical, internal, or one configured).
    pub tier: Option<String>,
    /// Owner name (ignored for role `owner`: always its own).
    pub owner: Option<String>,
    /// privca issuer id or external issuer DN.
    pub issuer: Option<String>,
    /// acme, est, scep, cli, import, discovery, privca.
    pub source: Option<String>,
    /// Only certificates expiring within this many days, already expired included.
    pub expiring_within: Option<u32>,
    /// Text searched in subject and SANs (case-insensitive).
    pub search: Option<String>,
    /// Order: `not_after` (default), `issued_at`, `serial`, `owner`, `tier` or `status`; a
    /// leading `-` for descending. Ties go by notAfter, then fingerprint, in the same direction.
    pub sort: Option<String>,
    /// Rows per page (default 100, at most 500).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (made under the same `sort`).
    pub cursor: Option<String>,
}

/// One page of certificates, in the order asked for (default: soonest expiry first).
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificatePage {
    /// The certificates.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<InventoryItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List certificates.
#[utoipa::path(get, path = "/certificates", tag = "certificates", params(ListQuery),
    responses((status = 200, body = CertificatePage), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AdminState>,
    p: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Json<CertificatePage>, Problem> {
    p.require(&state, Action::Read).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let sort = sort::parse(q.sort.as_deref())?;
    let (after_key, after) = match q.cursor.as_deref() {
        Some(c) => {
            let (key, after) = sort::parse_cursor(sort, c)?;
            (key, Some(after))
        }
        None => (None, None),
    };
    let filter = InventoryFilter {
        status: q
            .status
            .as_deref()
            .map(|s| InventoryStatus::parse(s).ok_or_else(|| Problem::bad_request(format!("unknown status `{s}`"))))
            .transpose()?,
        tier: q.tier.as_deref().map(tier).transpose()?,
        owner: p.scope_owner(q.owner),
        issuer: q.issuer,
        source: q.source,
        expiring_within: q.expiring_within.map(|d| i64::from(d) * 86_400),
        search: q.search,
        after,
        after_key,
        sort,
        limit: i64::from(limit),
    };
    let items = state.ca.ledger().inventory(&filter, &crate::clm::first_threshold(&state.ca.config().clm)).await?;
    let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|i| sort::cursor(sort, i))).flatten();
    Ok(Json(CertificatePage { items, next_cursor }))
}

fn tier(s: &str) -> Result<Tier, Problem> {
    Tier::parse(s).ok_or_else(|| Problem::bad_request(format!("unknown tier `{s}`")))
}

/// A certificate with its parsed details and the endpoints it was seen on.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDetail {
    /// The inventory row.
    #[schema(value_type = Object)]
    pub certificate: InventoryItem,
    /// Key, signature algorithm and extensions read from the certificate.
    #[schema(value_type = Object)]
    pub details: crate::clm::inventory::CertDetails,
    /// Where discovery saw it served.
    #[schema(value_type = Vec<Object>)]
    pub endpoints: Vec<crate::ledger::Endpoint>,
}

/// Load `id` (serial or SHA-256 fingerprint) for `p`, refusing another owner's certificate.
async fn load(state: &AdminState, p: &Principal, id: &str) -> Result<(InventoryItem, Vec<u8>), Problem> {
    let first = crate::clm::first_threshold(&state.ca.config().clm);
    let found = state.ca.ledger().inventory_item(id, &first).await?;
    let (item, der) = found.ok_or_else(|| Problem::not_found(format!("no certificate `{id}`")))?;
    p.require_owner_of(state, &item.owner).await?;
    Ok((item, der))
}

/// Show one certificate.
#[utoipa::path(get, path = "/certificates/{id}", tag = "certificates",
    params(("id" = String, Path, description = "serial (hex) or SHA-256 fingerprint")),
    responses((status = 200, body = CertificateDetail), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<CertificateDetail>, Problem> {
    p.require(&state, Action::Read).await?;
    let (certificate, der) = load(&state, &p, &id).await?;
    let endpoints = state.ca.ledger().endpoints_of(&certificate.fingerprint).await?;
    Ok(Json(CertificateDetail { certificate, details: crate::clm::inventory::details(&der), endpoints }))
}

/// `?format=` of the chain download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChainQuery {
    /// `pem` (default: leaf and the chain above it except the root) or `der` (the leaf only).
    pub format: Option<String>,
}

/// Download a certificate and its chain.
#[utoipa::path(get, path = "/certificates/{id}/chain", tag = "certificates",
    params(("id" = String, Path, description = "serial (hex) or SHA-256 fingerprint"), ChainQuery),
    responses((status = 200, description = "application/pem-certificate-chain or application/pkix-cert"), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn chain(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
    Params(q): Params<ChainQuery>,
) -> Result<Response, Problem> {
    p.require(&state, Action::Read).await?;
    let (item, der) = load(&state, &p, &id).await?;
    match q.format.as_deref().unwrap_or("pem") {
        "der" => Ok(([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response()),
        "pem" => {
            let mut pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &der)
                .map_err(|_| Problem::from(crate::error::CaError::internal("PEM encoding")))?;
            if let Some(issuer) = state.ca.ca_by_id(&item.issuer) {
                pem.push_str(&state.ca.chain_without_root(issuer));
            }
            Ok(([(header::CONTENT_TYPE, "application/pem-certificate-chain")], pem).into_response())
        }
        other => Err(Problem::bad_request(format!("format `{other}`: use pem or der"))),
    }
}

/// `POST /certificates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    /// PKCS#10 CSR, PEM.
    pub csr: String,
    /// Profile name.
    pub profile: String,
    /// CLM owner (default: the profile's; role `owner`: always its own).
    pub owner: Option<String>,
}

/// What issuance answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issued {
    /// `issued` or `pending` (waiting for approval).
    pub status: &'static str,
    /// Serial of the new certificate.
    pub serial: Option<String>,
    /// Leaf and chain, PEM.
    pub chain_pem: Option<String>,
    /// The approval request id, when pending.
    pub approval_id: Option<i64>,
}

/// Issue a certificate from a CSR.
#[utoipa::path(post, path = "/certificates", tag = "certificates", request_body = IssueBody,
    responses((status = 201, body = Issued), (status = 202, body = Issued, description = "waiting for approval"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn issue(
    State(state): State<AdminState>,
    p: Principal,
    Body(b): Body<IssueBody>,
) -> Result<(StatusCode, Json<Issued>), Problem> {
    p.require(&state, Action::Operate).await?;
    let der = crate::cli::csr_der(b.csr.as_bytes())?;
    let mut request = IssuanceRequest::from_csr(&der, &b.profile, p.requester())?;
    request.owner = p.scope_owner(b.owner);
    match state.ca.issue(request).await? {
        IssueOutcome::Issued(c) => Ok((
            StatusCode::CREATED,
            Json(Issued {
                status: "issued",
                serial: Some(c.record.serial.clone()),
                chain_pem: Some(c.chain_pem),
                approval_id: None,
            }),
        )),
        IssueOutcome::Pending(id) => Ok((
            StatusCode::ACCEPTED,
            Json(Issued { status: "pending", serial: None, chain_pem: None, approval_id: Some(id) }),
        )),
    }
}

/// `POST /certificates/{id}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// RFC 5280 reason name (default unspecified).
    pub reason: Option<String>,
}

/// What revocation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// `revoked`, `already-revoked` or `hold-released`.
    pub outcome: &'static str,
    /// The reason in force.
    pub reason: String,
}

/// Revoke a certificate privca issued.
#[utoipa::path(post, path = "/certificates/{id}/revoke", tag = "certificates", request_body = RevokeBody,
    params(("id" = String, Path, description = "serial (hex) or SHA-256 fingerprint")),
    responses((status = 200, body = Revoked), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
    Body(b): Body<RevokeBody>,
) -> Result<Json<Revoked>, Problem> {
    p.require(&state, Action::Operate).await?;
    let reason: RevocationReason = b.reason.as_deref().unwrap_or("unspecified").parse()?;
    let (item, _) = load(&state, &p, &id).await?;
    if matches!(item.source.as_str(), "import" | "discovery") {
        return Err(Problem::bad_request("privca revokes only certificates it issued"));
    }
    let outcome = state.ca.revoke(&item.serial, reason, None, &p.requester()).await?;
    let (outcome, reason) = match outcome {
        RevokeOutcome::Revoked => ("revoked", reason.as_str().to_owned()),
        RevokeOutcome::AlreadyRevoked(r) => ("already-revoked", r),
        RevokeOutcome::HoldReleased => ("hold-released", reason.as_str().to_owned()),
    };
    Ok(Json(Revoked { outcome, reason }))
}
