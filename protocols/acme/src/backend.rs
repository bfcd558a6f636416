//! The port: the ACME objects the crate exchanges with the core, and [`AcmeBackend`], the
//! storage, policy and issuance services the router needs. Status values are the RFC 8555
//! §7.1.6 names; an order's `ready` state is derived (see [`crate::order_state`]), never stored.

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::AcmeError;

/// An identifier object (§7.1.3): `dns` or `ip` (RFC 8738).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Lower-case A-label DNS name (wildcards keep `*.` in orders), or an IP address in RFC 5952
    /// text form.
    pub value: String,
}

impl Identifier {
    /// The identifier an authorization is for: a wildcard DNS name without its `*.`, and
    /// whether it was one (§7.1.4).
    pub fn authz_base(&self) -> (Identifier, bool) {
        match self.value.strip_prefix("*.") {
            Some(base) if self.kind == "dns" => (Identifier { kind: self.kind.clone(), value: base.to_owned() }, true),
            _ => (self.clone(), false),
        }
    }
}

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[allow(missing_docs)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            /// The RFC 8555 name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the RFC 8555 name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

status_enum!(
    /// Account status (§7.1.6).
    AccountStatus { Valid = "valid", Deactivated = "deactivated", Revoked = "revoked" }
);
status_enum!(
    /// Order status (§7.1.6).
    OrderStatus { Pending = "pending", Ready = "ready", Processing = "processing", Valid = "valid", Invalid = "invalid" }
);
status_enum!(
    /// Authorization status (§7.1.6).
    AuthzStatus {
        Pending = "pending",
        Valid = "valid",
        Invalid = "invalid",
        Deactivated = "deactivated",
        Expired = "expired",
        Revoked = "revoked",
    }
);
status_enum!(
    /// Challenge status (§7.1.6).
    ChallengeStatus { Pending = "pending", Processing = "processing", Valid = "valid", Invalid = "invalid" }
);
status_enum!(
    /// Challenge types offered.
    ChallengeType { Http01 = "http-01", Dns01 = "dns-01", TlsAlpn01 = "tls-alpn-01" }
);

/// An account (§7.1.2).
#[derive(Debug, Clone)]
pub struct Account {
    /// Opaque id (last segment of the account URL).
    pub id: String,
    /// The public JWK as JSON (only the RFC 7638 members).
    pub jwk: Value,
    /// RFC 7638 thumbprint of `jwk`, base64url.
    pub thumbprint: String,
    /// Status.
    pub status: AccountStatus,
    /// `mailto:` URLs.
    pub contact: Vec<String>,
    /// The verified EAB JWS, reflected in the account object (§7.3.4).
    pub eab: Option<Value>,
    /// CLM owner given by the EAB key.
    pub owner: Option<String>,
    /// Profile bound by the EAB key.
    pub profile: Option<String>,
}

/// An EAB key created by the operator (§7.3.4).
#[derive(Debug, Clone)]
pub struct EabKey {
    /// Key id.
    pub kid: String,
    /// HMAC key.
    pub hmac_key: HmacKey,
    /// Owner of every certificate issued to the bound account.
    pub owner: String,
    /// Profile forced on the bound account.
    pub profile: Option<String>,
    /// The account it is bound to, once used.
    pub bound_account: Option<String>,
}

/// An EAB HMAC key in memory: wiped when dropped, redacted by `Debug`.
#[derive(Clone, Default)]
pub struct HmacKey(Zeroizing<Vec<u8>>);

impl HmacKey {
    /// Wraps the key's octets.
    pub fn new(key: Zeroizing<Vec<u8>>) -> Self {
        Self(key)
    }

    /// The key's octets, for the MAC check only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

/// An order (§7.1.3).
#[derive(Debug, Clone)]
pub struct Order {
    /// Opaque id.
    pub id: String,
    /// Owning account id.
    pub account_id: String,
    /// Stored status (`pending`, `processing`, `valid` or `invalid`).
    pub status: OrderStatus,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Identifiers as requested (wildcards keep `*.`).
    pub identifiers: Vec<Identifier>,
    /// Profile the certificate is issued under.
    pub profile: String,
    /// `replaces` as sent (RFC 9773 certID).
    pub replaces: Option<String>,
    /// Serial (hex) of the certificate that `replaces` names.
    pub replaces_serial: Option<String>,
    /// Authorization ids.
    pub authz_ids: Vec<String>,
    /// Problem document when invalid.
    pub error: Option<Value>,
    /// Serial (hex) of the issued certificate.
    pub certificate_serial: Option<String>,
    /// Approval request id while waiting for an operator.
    pub approval_id: Option<i64>,
}

/// One challenge of an authorization (stored inside it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    /// Type.
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    /// Token (base64url of 32 random octets).
    pub token: String,
    /// Status.
    pub status: ChallengeStatus,
    /// When it was validated, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<i64>,
    /// Problem document when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// An authorization (§7.1.4).
#[derive(Debug, Clone)]
pub struct Authz {
    /// Opaque id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Identifier without `*.`.
    pub identifier: Identifier,
    /// Whether it was created for a wildcard name.
    pub wildcard: bool,
    /// Status.
    pub status: AuthzStatus,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// Challenges.
    pub challenges: Vec<Challenge>,
}

/// What finalize produced.
#[derive(Debug, Clone)]
pub enum FinalizeOutcome {
    /// Issued; hex serial.
    Issued(String),
    /// Waiting for an operator; approval id.
    Pending(i64),
    /// Another finalize of the same order is under way (or done).
    Busy,
}

/// Where a pending approval stands.
#[derive(Debug, Clone)]
pub enum ApprovalState {
    /// Still waiting.
    Pending,
    /// Approved and issued; hex serial.
    Issued(String),
    /// Denied, with the operator's reason.
    Denied(String),
}

/// A certificate as ACME sees it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Hex serial.
    pub serial: String,
    /// The ACME account that ordered it, if any.
    pub account_id: Option<String>,
    /// Its identifiers (dNSName and iPAddress SANs).
    pub identifiers: Vec<Identifier>,
    /// Already revoked.
    pub revoked: bool,
    /// ARI suggested window (Unix seconds), `start < end`.
    pub window: (i64, i64),
    /// A non-invalid order already names it in `replaces`.
    pub replaced: bool,
    /// RFC 7638 thumbprint of its subject key.
    pub key_thumbprint: Option<String>,
}

/// What redeeming a nonce found (§6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// First use; the request's account (if it named one) is as the request saw it.
    Fresh,
    /// Used before.
    Used,
    /// First use, but the request's account changed after the request read it (another
    /// instance sharing the ledger updated it): the router reads it again.
    AccountChanged,
}

/// The core services behind the ACME router.
pub trait AcmeBackend: Clone + Send + Sync + 'static {
    /// Records `nonce` as used (single use across instances) and, for a `kid` request, checks
    /// in the same step that `account` still is what the ledger holds.
    fn redeem_nonce(
        &self,
        nonce: &str,
        expires_at: i64,
        account: Option<&Account>,
    ) -> impl Future<Output = Result<Redeemed, AcmeError>> + Send;
    /// The account whose key has thumbprint `thumbprint`.
    fn account_by_key(&self, thumbprint: &str) -> impl Future<Output = Result<Option<Account>, AcmeError>> + Send;
    /// The account `id` (may be a copy kept in memory: `redeem_nonce` tells whether it is
    /// still current).
    fn account(&self, id: &str) -> impl Future<Output = Result<Option<Account>, AcmeError>> + Send;
    /// The account `id` as the ledger holds it now, never a copy kept in memory (which this
    /// replaces): asked when a signature does not verify against the key of the copy, since
    /// another instance sharing the ledger may have rolled the key over.
    fn account_from_ledger(&self, id: &str) -> impl Future<Output = Result<Option<Account>, AcmeError>> + Send;
    /// The EAB key `kid`.
    fn eab_key(&self, kid: &str) -> impl Future<Output = Result<Option<EabKey>, AcmeError>> + Send;
    /// Stores a new account (binding its EAB key, if any, in the same transaction; fails if the
    /// key was bound meanwhile).
    fn create_account(
        &self,
        account: &Account,
        eab_kid: Option<&str>,
    ) -> impl Future<Output = Result<(), AcmeError>> + Send;
    /// Stores contact, status and key of an existing account.
    fn update_account(&self, account: &Account) -> impl Future<Output = Result<(), AcmeError>> + Send;
    /// Applies issuance policy to a new order: returns the profile to use, or
    /// `rejectedIdentifier` (with subproblems) / `malformed` for an unknown profile.
    fn check_order(
        &self,
        account: &Account,
        identifiers: &[Identifier],
        profile: Option<&str>,
    ) -> impl Future<Output = Result<String, AcmeError>> + Send;
    /// A valid, unexpired authorization of `account_id` for `identifier` (reuse, §7.1.4, and
    /// revocation by a controlling account, §7.6).
    fn valid_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
    ) -> impl Future<Output = Result<Option<Authz>, AcmeError>> + Send;
    /// Stores an order and its new authorizations in one transaction.
    fn create_order(&self, order: &Order, new_authzs: &[Authz]) -> impl Future<Output = Result<(), AcmeError>> + Send;
    /// The order `id`.
    fn order(&self, id: &str) -> impl Future<Output = Result<Option<Order>, AcmeError>> + Send;
    /// Stores an order's status, error, certificate and approval.
    fn update_order(&self, order: &Order) -> impl Future<Output = Result<(), AcmeError>> + Send;
    /// Ids of the account's orders, newest first.
    fn account_orders(&self, account_id: &str) -> impl Future<Output = Result<Vec<String>, AcmeError>> + Send;
    /// The authorization `id`.
    fn authz(&self, id: &str) -> impl Future<Output = Result<Option<Authz>, AcmeError>> + Send;
    /// Stores an authorization's status and challenges.
    fn update_authz(&self, authz: &Authz) -> impl Future<Output = Result<(), AcmeError>> + Send;
    /// Issues the certificate for a ready order from `csr_der` (signature and key policy are
    /// checked by the core; `badCSR`/`badPublicKey` on refusal). The backend records the
    /// order's state with the issuance itself: it claims the order (`pending` → `processing`)
    /// atomically with reserving the certificate or queueing it for approval (`Busy` when
    /// another finalize got there first), stores `valid` with the serial in the transaction
    /// that commits the certificate, and leaves the order `pending` again on an error.
    fn finalize(
        &self,
        account: &Account,
        order: &Order,
        csr_der: &[u8],
    ) -> impl Future<Output = Result<FinalizeOutcome, AcmeError>> + Send;
    /// Where approval `id` stands.
    fn approval_state(&self, id: i64) -> impl Future<Output = Result<ApprovalState, AcmeError>> + Send;
    /// The PEM chain (leaf first, without the root) of `serial` and the account that ordered
    /// it.
    fn certificate_chain(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Option<(String, Option<String>)>, AcmeError>> + Send;
    /// The certificate whose DER is `der` (issued by us).
    fn certificate_by_der(&self, der: &[u8]) -> impl Future<Output = Result<Option<CertInfo>, AcmeError>> + Send;
    /// The certificate named by an RFC 9773 certID.
    fn certificate_by_cert_id(
        &self,
        key_identifier: &[u8],
        serial: &[u8],
    ) -> impl Future<Output = Result<Option<CertInfo>, AcmeError>> + Send;
    /// Revokes `serial` with RFC 5280 `reason`; `alreadyRevoked` when it was.
    fn revoke(&self, serial: &str, reason: u8, by: &str) -> impl Future<Output = Result<(), AcmeError>> + Send;
}
