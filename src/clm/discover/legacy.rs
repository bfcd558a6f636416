//! A minimal TLS client for the servers rustls cannot talk to (TLS 1.0 and 1.1 only, or
//! TLS 1.2 with only RSA key exchange or CBC suites): one ClientHello (RFC 5246 §7.4.1.2)
//! offering up to TLS 1.2 with the old cipher suites, then the server's plaintext ServerHello
//! (its version) and Certificate message (its chain) are read, and the connection dropped.
//! Nothing is negotiated past that, so no cryptography is needed.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the probe read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyHello {
    /// The server's chosen protocol version (`TLSv1.0`, …).
    pub version: &'static str,
    /// The served chain, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
}

/// Why the probe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The server sent an alert (level, description).
    #[error("TLS alert {1} (level {0})")]
    Alert(u8, u8),
    /// The bytes are not TLS records or handshake messages.
    #[error("not TLS: {0}")]
    Malformed(&'static str),
    /// The connection ended before the Certificate message.
    #[error("connection closed before the server's certificate")]
    Closed,
    /// The server chose a version this probe does not read.
    #[error("server chose protocol version {0:#06x}")]
    Version(u16),
    /// The server's answer exceeds the probe's limit.
    #[error("server answer larger than {0} bytes")]
    TooLarge(usize),
    /// Reading or writing failed.
    #[error("{0}")]
    Io(String),
}

/// Most handshake bytes read before giving up.
const MAX_HANDSHAKE: usize = 256 * 1024;

/// Cipher suites offered: ECDHE, DHE and RSA key exchange with AES-GCM, AES-CBC and 3DES
/// (a server picks one before sending its certificate; none is ever used).
const SUITES: [u16; 24] = [
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0xc023, 0xc027, 0x009e, 0x0033,
    0x0039, 0x009c, 0x009d, 0x002f, 0x0035, 0x003c, 0x003d, 0x000a, 0xc012, 0x0016,
];

/// The ClientHello record: record version TLS 1.0 (what the oldest servers accept),
/// client_version TLS 1.2, with SNI when `server_name` is a host name.
pub fn client_hello(server_name: Option<&str>, random: [u8; 32]) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = server_name.filter(|n| !n.is_empty() && n.len() < 256) {
        let n = name.as_bytes();
        push_u16(&mut ext, 0x0000); // server_name
        push_u16(&mut ext, n.len() as u16 + 5);
        push_u16(&mut ext, n.len() as u16 + 3);
        ext.push(0); // host_name
        push_u16(&mut ext, n.len() as u16);
        ext.extend_from_slice(n);
    }
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms (TLS 1.2): SHA-256/384/512 and SHA-1 with RSA and ECDSA, RSA-PSS
    let algs: [u16; 11] = [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201];
    push_u16(&mut ext, 0x000d);
    push_u16(&mut ext, (algs.len() * 2 + 2) as u16);
    push_u16(&mut ext, (algs.len() * 2) as u16);
    for a in algs {
        push_u16(&mut ext, a);
    }
    // renegotiation_info, empty
    ext.extend_from_slice(&[0xff, 0x01, 0x00, 0x01, 0x00]);

    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&random);
    body.push(0); // no session id
    push_u16(&mut body, (SUITES.len() * 2) as u16);
    for s in SUITES {
        push_u16(&mut body, s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    push_u16(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);

    let mut handshake = vec![1]; // client_hello
    push_u24(&mut handshake, body.len());
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 0x03, 0x01];
    push_u16(&mut record, handshake.len() as u16);
    record.extend_from_slice(&handshake);
    record
}

fn push_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn push_u24(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
}

/// The name of a protocol version.
pub fn version_name(v: u16) -> Option<&'static str> {
    match v {
        0x0300 => Some("SSLv3"),
        0x0301 => Some("TLSv1.0"),
        0x0302 => Some("TLSv1.1"),
        0x0303 => Some("TLSv1.2"),
        _ => None,
    }
}

/// Incremental reader of the server's first flight: feed it records' bytes as they arrive.
#[derive(Debug, Default)]
pub struct FlightParser {
    /// Bytes not yet split into records.
    records: Vec<u8>,
    /// Handshake bytes not yet split into messages.
    handshake: Vec<u8>,
    total: usize,
    version: Option<&'static str>,
}

impl FlightParser {
    /// Adds `bytes`; returns the result once the Certificate message (after a ServerHello) has
    /// been read, `Ok(None)` while more bytes are needed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<LegacyHello>, ProbeError> {
        self.total += bytes.len();
        if self.total > MAX_HANDSHAKE {
            return Err(ProbeError::TooLarge(MAX_HANDSHAKE));
        }
        self.records.extend_from_slice(bytes);
        while self.records.len() >= 5 {
            let kind = self.records[0];
            if self.records[1] != 3 {
                return Err(ProbeError::Malformed("record version"));
            }
            let len = usize::from(u16::from_be_bytes([self.records[3], self.records[4]]));
            if len > 18_432 {
                return Err(ProbeError::Malformed("record length"));
            }
            if self.records.len() < 5 + len {
                break;
            }
            let fragment: Vec<u8> = self.records.drain(..5 + len).skip(5).collect();
            match kind {
                21 if fragment.len() >= 2 => return Err(ProbeError::Alert(fragment[0], fragment[1])),
                22 => {
                    self.handshake.extend_from_slice(&fragment);
                    if let Some(hello) = self.messages()? {
                        return Ok(Some(hello));
                    }
                }
                _ => return Err(ProbeError::Malformed("unexpected record type")),
            }
        }
        Ok(None)
    }

    /// Splits the handshake bytes into messages.
    fn messages(&mut self) -> Result<Option<LegacyHello>, ProbeError> {
        while self.handshake.len() >= 4 {
            let kind = self.handshake[0];
            let len = u32::from_be_bytes([0, self.handshake[1], self.handshake[2], self.handshake[3]]) as usize;
            if self.handshake.len() < 4 + len {
                return Ok(None);
            }
            let body: Vec<u8> = self.handshake.drain(..4 + len).skip(4).collect();
            match kind {
                2 => {
                    let v = body.get(..2).ok_or(ProbeError::Malformed("short ServerHello"))?;
                    let v = u16::from_be_bytes([v[0], v[1]]);
                    self.version = Some(version_name(v).ok_or(ProbeError::Version(v))?);
                }
                11 => {
                    let version = self.version.ok_or(ProbeError::Malformed("Certificate before ServerHello"))?;
                    return Ok(Some(LegacyHello { version, chain: certificate_list(&body)? }));
                }
                14 => return Err(ProbeError::Malformed("ServerHelloDone without a Certificate")),
                _ => {}
            }
        }
        Ok(None)
    }
}

/// The `certificate_list` of a TLS ≤ 1.2 Certificate message (RFC 5246 §7.4.2).
fn certificate_list(body: &[u8]) -> Result<Vec<Vec<u8>>, ProbeError> {
    let short = ProbeError::Malformed("short Certificate message");
    let total = body.get(..3).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize).ok_or(short.clone())?;
    let mut rest = body.get(3..3 + total).ok_or(short.clone())?;
    let mut chain = Vec::new();
    while !rest.is_empty() {
        let len = rest.get(..3).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize).ok_or(short.clone())?;
        chain.push(rest.get(3..3 + len).ok_or(short.clone())?.to_vec());
        rest = &rest[3 + len..];
    }
    if chain.is_empty() {
        return Err(ProbeError::Malformed("empty Certificate message"));
    }
    Ok(chain)
}

/// Sends the ClientHello on `stream` and reads up to the server's Certificate message.
pub async fn probe<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    server_name: Option<&str>,
) -> Result<LegacyHello, ProbeError> {
    let mut random = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| ProbeError::Io("no randomness".into()))?;
    stream.write_all(&client_hello(server_name, random)).await.map_err(|e| ProbeError::Io(e.to_string()))?;
    let mut parser = FlightParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| ProbeError::Io(e.to_string()))?;
        if n == 0 {
            return Err(ProbeError::Closed);
        }
        if let Some(hello) = parser.feed(&buf[..n])? {
            return Ok(hello);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 1];
        push_u16(&mut r, body.len() as u16);
        r.extend_from_slice(body);
        r
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        push_u24(&mut m, body.len());
        m.extend_from_slice(body);
        m
    }

    fn server_hello(version: u16) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7; 32]);
        b.extend_from_slice(&[0, 0x00, 0x2f, 0]);
        message(2, &b)
    }

    fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            push_u24(&mut list, c.len());
            list.extend_from_slice(c);
        }
        let mut b = Vec::new();
        push_u24(&mut b, list.len());
        b.extend_from_slice(&list);
        message(11, &b)
    }

    #[test]
    fn client_hello_is_a_tls10_record_offering_tls12_with_sni() {
        let hello = client_hello(Some("www.example.test"), [9; 32]);
        assert_eq!(&hello[..3], &[22, 3, 1]);
        assert_eq!(usize::from(u16::from_be_bytes([hello[3], hello[4]])), hello.len() - 5);
        assert_eq!(hello[5], 1, "client_hello");
        assert_eq!(&hello[9..11], &[3, 3], "client_version TLS 1.2");
        assert!(hello.windows(16).any(|w| w == b"www.example.test"));
        let no_sni = client_hello(None, [9; 32]);
        assert_eq!(hello.len() - no_sni.len(), 16 + 9);
    }

    #[test]
    fn reads_version_and_chain_across_record_boundaries() {
        let mut flight = server_hello(0x0301);
        flight.extend(certificate(&[b"leaf-der", b"intermediate-der"]));
        flight.extend(message(14, &[]));
        // Split the handshake over two records, and the bytes over many reads.
        let (a, b) = flight.split_at(50);
        let mut bytes = record(22, a);
        bytes.extend(record(22, b));
        let mut p = FlightParser::default();
        let mut got = None;
        for chunk in bytes.chunks(7) {
            if let Some(h) = p.feed(chunk).unwrap() {
                got = Some(h);
                break;
            }
        }
        let got = got.expect("certificate read");
        assert_eq!(got.version, "TLSv1.0");
        assert_eq!(got.chain, vec![b"leaf-der".to_vec(), b"intermediate-der".to_vec()]);
    }

    #[test]
    fn alerts_garbage_and_truncation_are_errors() {
        let mut p = FlightParser::default();
        assert_eq!(p.feed(&record(21, &[2, 70])), Err(ProbeError::Alert(2, 70)));
        let mut p = FlightParser::default();
        assert_eq!(p.feed(b"HTTP/1.1 400 Bad Request\r\n"), Err(ProbeError::Malformed("record version")));
        let mut p = FlightParser::default();
        let mut bad = server_hello(0x0301);
        bad.extend(message(11, &[0, 0, 9, 0, 0, 20, 1]));
        assert_eq!(p.feed(&record(22, &bad)), Err(ProbeError::Malformed("short Certificate message")));
        let mut p = FlightParser::default();
        assert_eq!(p.feed(&record(22, &server_hello(0x0304))), Err(ProbeError::Version(0x0304)));
        let mut p = FlightParser::default();
        let mut no_cert = server_hello(0x0302);
        no_cert.extend(message(14, &[]));
        assert!(p.feed(&record(22, &no_cert)).is_err());
        let mut p = FlightParser::default();
        assert_eq!(p.feed(&record(22, &server_hello(0x0303))[..20]), Ok(None), "waits for more");
    }
}
