//! The single revocation path: the CLI, the admin API and every protocol call
//! [`CertificateAuthority::revoke`](super::CertificateAuthority::revoke).

use std::str::FromStr;

use crate::error::CaError;

/// RFC 5280 §5.3.1 CRLReason (value 7 is unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// 0
    Unspecified,
    /// 1
    KeyCompromise,
    /// 2
    CaCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 6
    CertificateHold,
    /// 8
    RemoveFromCrl,
    /// 9
    PrivilegeWithdrawn,
    /// 10
    AaCompromise,
}

impl RevocationReason {
    const ALL: [(RevocationReason, &'static str, u8); 10] = [
        (Self::Unspecified, "unspecified", 0),
        (Self::KeyCompromise, "keyCompromise", 1),
        (Self::CaCompromise, "cACompromise", 2),
        (Self::AffiliationChanged, "affiliationChanged", 3),
        (Self::Superseded, "superseded", 4),
        (Self::CessationOfOperation, "cessationOfOperation", 5),
        (Self::CertificateHold, "certificateHold", 6),
        (Self::RemoveFromCrl, "removeFromCRL", 8),
        (Self::PrivilegeWithdrawn, "privilegeWithdrawn", 9),
        (Self::AaCompromise, "aACompromise", 10),
    ];

    /// RFC 5280 name.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(r, _, _)| *r == self).map(|(_, n, _)| *n).unwrap_or("unspecified")
    }

    /// RFC 5280 code.
    pub fn code(self) -> u8 {
        Self::ALL.iter().find(|(r, _, _)| *r == self).map(|(_, _, c)| *c).unwrap_or(0)
    }

    /// From the RFC 5280 code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.iter().find(|(_, _, c)| *c == code).map(|(r, _, _)| *r)
    }
}

impl FromStr for RevocationReason {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, CaError> {
        Self::ALL.iter().find(|(_, n, _)| n.eq_ignore_ascii_case(s)).map(|(r, _, _)| *r).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|(_, n, _)| *n).collect();
            CaError::bad_request(format!("unknown revocation reason `{s}` (use {})", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        assert_eq!("keycompromise".parse::<RevocationReason>().unwrap(), RevocationReason::KeyCompromise);
        assert_eq!(RevocationReason::RemoveFromCrl.code(), 8);
        assert_eq!(RevocationReason::from_code(7), None);
        assert!("bogus".parse::<RevocationReason>().is_err());
    }
}
