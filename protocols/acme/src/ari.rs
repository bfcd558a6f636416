//! RFC 9773 (ACME Renewal Information) certID: `base64url(AKI keyIdentifier) "."
//! base64url(serial content octets)`, both unpadded.

use crate::{jws::b64url, AcmeError};

/// A parsed certID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// The issuer's key identifier.
    pub key_identifier: Vec<u8>,
    /// The serial's DER content octets (a leading 0x00 kept).
    pub serial: Vec<u8>,
}

impl CertId {
    /// Parses `aki.serial`; padding or a bad alphabet is `malformed`.
    pub fn parse(s: &str) -> Result<Self, AcmeError> {
        let (aki, serial) = s.split_once('.').ok_or_else(|| AcmeError::malformed("certID has no `.`"))?;
        let key_identifier = b64url(aki, "certID key identifier")?;
        let serial = b64url(serial, "certID serial")?;
        if key_identifier.is_empty() || serial.is_empty() {
            return Err(AcmeError::malformed("certID has an empty part"));
        }
        Ok(Self { key_identifier, serial })
    }

    /// The serial as lower-case hex without the DER sign octet.
    pub fn serial_hex(&self) -> String {
        let s: &[u8] = match self.serial.as_slice() {
            [0, rest @ ..] if !rest.is_empty() => rest,
            s => s,
        };
        s.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9773_appendix_a_vector() {
        // AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21.
        let id = CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.key_identifier[..3], [0x69, 0x88, 0x5b]);
        assert_eq!(id.key_identifier.len(), 20);
        assert_eq!(id.serial, [0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(id.serial_hex(), "87654321");
        assert!(CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE").is_err());
        assert!(CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ").is_err());
    }
}
