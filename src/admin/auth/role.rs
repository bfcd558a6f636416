//! Roles and what each may do. One table ([`Role::allows`]) decides every call; handlers name
//! the [`Action`] they perform and never test roles themselves.

use std::fmt;

use serde::Serialize;

/// A role, held by a user or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users and tokens.
    Admin,
    /// Reads; approves and denies requests.
    Approver,
    /// Reads; issues, revokes, changes the inventory.
    Operator,
    /// Reads and acts on its own certificates only.
    Owner,
    /// Reads everything, including the audit log and the access list; changes nothing.
    Auditor,
    /// Reads `/metrics` only (tokens, not users).
    Metrics,
}

/// What a call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read certificates, inventory, owners, CLM state, discovery, approvals.
    Read,
    /// Issue, revoke, change inventory fields, mute and acknowledge notices.
    Operate,
    /// Approve or deny a queued request.
    Decide,
    /// Create enrollment credentials: EST users, SCEP challenges, ACME EAB keys; change owners.
    Enroll,
    /// Read the audit log, its verification and the access list.
    Audit,
    /// Manage users and tokens.
    Access,
    /// Read the Prometheus metrics.
    Metrics,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [Role::Admin, Role::Approver, Role::Operator, Role::Owner, Role::Auditor, Role::Metrics];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Owner => "owner",
            Role::Auditor => "auditor",
            Role::Metrics => "metrics",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Approver => matches!(action, Read | Decide),
            Role::Operator => matches!(action, Read | Operate),
            Role::Owner => matches!(action, Read | Operate),
            Role::Auditor => matches!(action, Read | Audit),
            Role::Metrics => matches!(action, Metrics),
        }
    }

    /// Whether a dashboard login with this role needs a TOTP code.
    pub fn needs_mfa(self) -> bool {
        matches!(self, Role::Admin | Role::Approver)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_manages_access_and_only_metrics_roles_read_metrics() {
        for r in Role::ALL {
            assert_eq!(r.allows(Action::Access), r == Role::Admin);
            assert_eq!(r.allows(Action::Metrics), matches!(r, Role::Admin | Role::Metrics));
            assert_eq!(r.allows(Action::Decide), matches!(r, Role::Admin | Role::Approver));
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(!Role::Auditor.allows(Action::Operate));
        assert!(!Role::Metrics.allows(Action::Read));
    }
}
