//! Pure status rules (§7.1.6): an order's visible status from its stored status, expiry and
//! authorizations; authorization expiry.

use crate::backend::{Authz, AuthzStatus, OrderStatus};

/// The authorization's status at `now` (`valid`/`pending` past `expires` read as `expired`).
pub fn authz_status(authz: &Authz, now: i64) -> AuthzStatus {
    match authz.status {
        AuthzStatus::Pending | AuthzStatus::Valid if authz.expires <= now => AuthzStatus::Expired,
        s => s,
    }
}

/// The order's status at `now`: a stored `pending` order is `ready` once every authorization is
/// valid and `invalid` once one of them failed, was deactivated or expired, or the order itself
/// expired.
pub fn order_status(stored: OrderStatus, expires: i64, authzs: &[Authz], now: i64) -> OrderStatus {
    if stored != OrderStatus::Pending {
        return stored;
    }
    if expires <= now {
        return OrderStatus::Invalid;
    }
    let mut all_valid = true;
    for a in authzs {
        match authz_status(a, now) {
            AuthzStatus::Valid => {}
            AuthzStatus::Pending => all_valid = false,
            AuthzStatus::Invalid | AuthzStatus::Deactivated | AuthzStatus::Expired | AuthzStatus::Revoked => {
                return OrderStatus::Invalid
            }
        }
    }
    if all_valid && !authzs.is_empty() {
        OrderStatus::Ready
    } else {
        OrderStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Identifier;

    fn authz(status: AuthzStatus, expires: i64) -> Authz {
        Authz {
            id: "a".into(),
            account_id: "x".into(),
            identifier: Identifier { kind: "dns".into(), value: "a.test".into() },
            wildcard: false,
            status,
            expires,
            challenges: vec![],
        }
    }

    #[test]
    fn order_status_follows_authorizations() {
        let now = 1000;
        let p = OrderStatus::Pending;
        assert_eq!(order_status(p, 2000, &[authz(AuthzStatus::Valid, 2000)], now), OrderStatus::Ready);
        assert_eq!(
            order_status(p, 2000, &[authz(AuthzStatus::Valid, 2000), authz(AuthzStatus::Pending, 2000)], now),
            OrderStatus::Pending
        );
        assert_eq!(order_status(p, 2000, &[authz(AuthzStatus::Invalid, 2000)], now), OrderStatus::Invalid);
        assert_eq!(order_status(p, 2000, &[authz(AuthzStatus::Valid, 500)], now), OrderStatus::Invalid);
        assert_eq!(order_status(p, 900, &[authz(AuthzStatus::Valid, 2000)], now), OrderStatus::Invalid);
        assert_eq!(order_status(OrderStatus::Valid, 900, &[], now), OrderStatus::Valid);
    }
}
