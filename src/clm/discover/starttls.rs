//! The plaintext openings that upgrade a connection to TLS: SMTP (RFC 3207), IMAP (RFC 9051
//! §6.2.1) and LDAP (RFC 4511 §4.14). Each reads only what the server sends before it waits
//! for the client's ClientHello.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Which STARTTLS dialect to speak before the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Starttls {
    /// IMAP `STARTTLS`.
    Imap,
    /// LDAP StartTLS extended operation.
    Ldap,
    /// SMTP `EHLO`, `STARTTLS`.
    Smtp,
}

/// Why the upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("STARTTLS ({protocol}): {reason}")]
pub struct StarttlsError {
    /// smtp, imap or ldap.
    pub protocol: &'static str,
    /// What went wrong, with the server's words when it said something.
    pub reason: String,
}

/// Longest line or message read.
const MAX_LINE: usize = 8192;

impl Starttls {
    fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Ldap => "ldap",
            Self::Smtp => "smtp",
        }
    }

    /// Speaks the protocol's opening on `stream` until the server is ready for TLS.
    pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(self, stream: &mut S) -> Result<(), StarttlsError> {
        let err = |reason: String| StarttlsError { protocol: self.name(), reason };
        match self {
            Self::Smtp => {
                let banner = smtp_reply(stream).await.map_err(err)?;
                expect_code(&banner, "220").map_err(err)?;
                send(stream, b"EHLO privca-discover\r\n").await.map_err(err)?;
                let ehlo = smtp_reply(stream).await.map_err(err)?;
                expect_code(&ehlo, "250").map_err(err)?;
                if !ehlo.iter().any(|l| l.get(4..).is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))) {
                    return Err(err("the server does not offer STARTTLS".into()));
                }
                send(stream, b"STARTTLS\r\n").await.map_err(err)?;
                let ready = smtp_reply(stream).await.map_err(err)?;
                expect_code(&ready, "220").map_err(err)
            }
            Self::Imap => {
                let greeting = line(stream).await.map_err(err)?;
                if !greeting.starts_with("* OK") {
                    return Err(err(format!("greeting `{greeting}`")));
                }
                send(stream, b"a1 STARTTLS\r\n").await.map_err(err)?;
                loop {
                    let l = line(stream).await.map_err(err)?;
                    if let Some(status) = l.strip_prefix("a1 ") {
                        return if status.starts_with("OK") { Ok(()) } else { Err(err(format!("answer `{l}`"))) };
                    }
                }
            }
            Self::Ldap => {
                send(stream, &ldap_start_tls_request()).await.map_err(err)?;
                let answer = ldap_message(stream).await.map_err(err)?;
                ldap_success(&answer).map_err(err)
            }
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), String> {
    stream.write_all(bytes).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())
}

/// One CRLF-terminated line, without the line ending, read a byte at a time (nothing past it
/// is consumed: the TLS bytes that follow belong to the handshake).
async fn line<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, String> {
    let mut out = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if stream.read(&mut b).await.map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        if b[0] == b'\n' {
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.push(b[0]);
        if out.len() > MAX_LINE {
            return Err("line too long (not a text protocol?)".into());
        }
    }
}

/// An SMTP reply: its lines, up to the one with a space after the code.
async fn smtp_reply<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let l = line(stream).await?;
        let last = l.len() < 4 || l.as_bytes().get(3) == Some(&b' ');
        lines.push(l);
        if last || lines.len() > 100 {
            return Ok(lines);
        }
    }
}

fn expect_code(reply: &[String], code: &str) -> Result<(), String> {
    match reply.last() {
        Some(l) if l.starts_with(code) => Ok(()),
        Some(l) => Err(format!("expected {code}, got `{l}`")),
        None => Err("empty reply".into()),
    }
}

/// LDAPMessage { messageID 1, extendedReq { requestName "1.3.6.1.4.1.1466.20037" } }.
pub fn ldap_start_tls_request() -> Vec<u8> {
    let oid = b"1.3.6.1.4.1.1466.20037";
    let mut ext = vec![0x80, oid.len() as u8];
    ext.extend_from_slice(oid);
    let mut op = vec![0x77, ext.len() as u8];
    op.extend(ext);
    let mut body = vec![0x02, 0x01, 0x01];
    body.extend(op);
    let mut msg = vec![0x30, body.len() as u8];
    msg.extend(body);
    msg
}

/// One BER LDAPMessage (definite length).
async fn ldap_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, String> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    if head[0] != 0x30 {
        return Err("not an LDAP message".into());
    }
    let len = if head[1] & 0x80 == 0 {
        usize::from(head[1])
    } else {
        let n = usize::from(head[1] & 0x7f);
        if n == 0 || n > 3 {
            return Err("bad LDAP message length".into());
        }
        let mut l = [0u8; 3];
        stream.read_exact(&mut l[..n]).await.map_err(|e| e.to_string())?;
        l[..n].iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b))
    };
    if len > MAX_LINE {
        return Err("LDAP message too long".into());
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(body)
}

/// The ExtendedResponse (tag 0x78) in `body` carries resultCode success (0).
fn ldap_success(body: &[u8]) -> Result<(), String> {
    // messageID INTEGER, then the protocolOp.
    let id_len = usize::from(*body.get(1).ok_or("short LDAP answer")?);
    let op = body.get(2 + id_len..).ok_or("short LDAP answer")?;
    if op.first() != Some(&0x78) {
        return Err("the answer is not an ExtendedResponse".into());
    }
    let skip = if op.get(1).is_some_and(|b| b & 0x80 != 0) { 2 + usize::from(op[1] & 0x7f) } else { 2 };
    match op.get(skip..skip + 3) {
        Some([0x0a, 0x01, 0x00]) => Ok(()),
        Some([0x0a, 0x01, code]) => Err(format!("resultCode {code}")),
        _ => Err("malformed ExtendedResponse".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn smtp_upgrade_reads_multiline_replies_and_needs_the_extension() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let talk = tokio::spawn(async move {
            server.write_all(b"220 mx.example.test ESMTP\r\n").await.unwrap();
            assert_eq!(line(&mut server).await.unwrap(), "EHLO privca-discover");
            server.write_all(b"250-mx.example.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n").await.unwrap();
            assert_eq!(line(&mut server).await.unwrap(), "STARTTLS");
            server.write_all(b"220 go ahead\r\n").await.unwrap();
        });
        Starttls::Smtp.upgrade(&mut client).await.unwrap();
        talk.await.unwrap();

        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            server.write_all(b"220 mx ESMTP\r\n").await.unwrap();
            let _ = line(&mut server).await;
            server.write_all(b"250-mx\r\n250 SIZE 1000\r\n").await.unwrap();
        });
        let e = Starttls::Smtp.upgrade(&mut client).await.unwrap_err();
        assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
    }

    #[test]
    fn ldap_start_tls_request_and_answer() {
        let req = ldap_start_tls_request();
        assert_eq!(req[0], 0x30);
        assert_eq!(usize::from(req[1]), req.len() - 2);
        // messageID 1, ExtendedResponse { resultCode success, matchedDN "", diagnosticMessage "" }
        assert_eq!(ldap_success(&[0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]), Ok(()));
        assert!(ldap_success(&[0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00]).is_err());
    }
}
