//! Degenerate certs-only CMS SignedData (RFC 8894 §4.2.1.2, §3.3.2.1): certificates in the
//! order given — GetCACert puts the RA certificate first, which a DER SET OF would
//! reorder — and optionally CRLs (GetCRL). Encoded by hand from DER pieces for that reason.

use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::Encode;

/// A DER TLV with a one-byte `tag`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `ContentInfo { signedData, SignedData { v1, {}, {id-data}, [0] certs, [1] crls, {} } }`.
pub fn degenerate(certs: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Vec<u8>, der::Error> {
    let mut signed = Vec::new();
    signed.extend(tlv(0x02, &[1])); // version 1
    signed.extend(tlv(0x31, &[])); // digestAlgorithms
    signed.extend(tlv(0x30, &ID_DATA.to_der()?)); // encapContentInfo without content
    if !certs.is_empty() {
        signed.extend(tlv(0xa0, &certs.concat()));
    }
    if !crls.is_empty() {
        signed.extend(tlv(0xa1, &crls.concat()));
    }
    signed.extend(tlv(0x31, &[])); // signerInfos
    let mut info = ID_SIGNED_DATA.to_der()?;
    info.extend(tlv(0xa0, &tlv(0x30, &signed)));
    Ok(tlv(0x30, &info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cms::{content_info::ContentInfo, signed_data::SignedData};
    use der::Decode;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 0x03]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn an_empty_degenerate_signed_data_parses() {
        let der = degenerate(&[], &[]).unwrap();
        let info = ContentInfo::from_der(&der).unwrap();
        let sd: SignedData = info.content.decode_as().unwrap();
        assert!(sd.certificates.is_none() && sd.signer_infos.0.is_empty());
    }
}
