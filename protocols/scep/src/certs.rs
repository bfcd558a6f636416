//! Degenerate certs-only CMS SignedData (RFC 8894 §4.2.1.2, §3.3.2.1): certificates in the
//! order given — GetCACert puts the RA certificate first, which a DER SET OF would
//! reorder — and optionally CRLs (GetCRL). Assembled from the DER pieces as given, each
//! constructed value wrapped by `der` around its content octets.

use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::{Any, Encode, Tag, TagNumber};

/// The DER of `tag` around `content` (DER pieces, kept in their order).
fn wrap(tag: Tag, content: Vec<u8>) -> Result<Vec<u8>, der::Error> {
    Any::new(tag, content)?.to_der()
}

/// A constructed `[number]` (IMPLICIT) around `content`.
fn context(number: TagNumber, content: Vec<u8>) -> Result<Vec<u8>, der::Error> {
    wrap(Tag::ContextSpecific { constructed: true, number }, content)
}

/// `ContentInfo { signedData, SignedData { v1, {}, {id-data}, [0] certs, [1] crls, {} } }`.
pub fn degenerate(certs: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Vec<u8>, der::Error> {
    let empty_set = wrap(Tag::Set, Vec::new())?;
    let mut signed = 1u8.to_der()?; // version 1
    signed.extend(&empty_set); // digestAlgorithms
    signed.extend(wrap(Tag::Sequence, ID_DATA.to_der()?)?); // encapContentInfo without content
    if !certs.is_empty() {
        signed.extend(context(TagNumber::N0, certs.concat())?);
    }
    if !crls.is_empty() {
        signed.extend(context(TagNumber::N1, crls.concat())?);
    }
    signed.extend(&empty_set); // signerInfos
    let mut info = ID_SIGNED_DATA.to_der()?;
    info.extend(context(TagNumber::N0, wrap(Tag::Sequence, signed)?)?);
    wrap(Tag::Sequence, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cms::{content_info::ContentInfo, signed_data::SignedData};
    use der::Decode;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(wrap(Tag::OctetString, vec![0; 3]).unwrap()[..2], [0x04, 0x03]);
        assert_eq!(wrap(Tag::OctetString, vec![0; 200]).unwrap()[..3], [0x04, 0x81, 200]);
        assert_eq!(wrap(Tag::OctetString, vec![0; 300]).unwrap()[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(context(TagNumber::N1, vec![]).unwrap(), [0xa1, 0x00]);
    }

    /// Certificates and CRLs keep their order (a SET OF in DER would sort them).
    #[test]
    fn certificates_keep_the_order_given() {
        let (a, b) = (vec![0x30, 0x01, 0x02], vec![0x30, 0x01, 0x01]);
        let der = degenerate(&[a.clone(), b.clone()], std::slice::from_ref(&b)).unwrap();
        let expected = [
            &[0x30, 0x30, 0x06, 0x09][..],
            ID_SIGNED_DATA.as_bytes(),
            &[0xa0, 0x23, 0x30, 0x21, 0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0b, 0x06, 0x09][..],
            ID_DATA.as_bytes(),
            &[0xa0, 0x06][..],
            &a,
            &b,
            &[0xa1, 0x03][..],
            &b,
            &[0x31, 0x00][..],
        ]
        .concat();
        assert_eq!(der, expected);
    }

    #[test]
    fn an_empty_degenerate_signed_data_parses() {
        let der = degenerate(&[], &[]).unwrap();
        let info = ContentInfo::from_der(&der).unwrap();
        let sd: SignedData = info.content.decode_as().unwrap();
        assert!(sd.certificates.is_none() && sd.signer_infos.0.is_empty());
    }
}
