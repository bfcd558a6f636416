//! http-01 (§8.3, RFC 8738 §7): `GET http://<identifier>:<port>/.well-known/acme-challenge/<token>`
//! must return the key authorization (trailing whitespace ignored).
//!
//! Redirects (301, 302, 303, 307, 308) are followed, at most 10, and only as §8.3 allows: to
//! `http:` or `https:` URLs on port 80 or 443 (an absolute URL without a port means the scheme's
//! default). A relative redirect stays on the current scheme, host and port, so the first
//! request's configured port (`http01_port`, 5002 in the dev config) carries over to it. Each
//! target is resolved through the validator's resolver, and IP literals and resolved addresses
//! in the deny list are never dialled. `https:` targets are fetched over TLS without
//! certificate validation, as boulder does.
//!
//! Any failure to get a response (DNS of a redirect target, a denied address, a forbidden
//! redirect, a refused or broken connection) is the one generic `connection` problem of
//! [`super::unreachable`]; the cause is logged at debug level only. A response that is not
//! 200 is `unauthorized`, a wrong body `incorrectResponse`, neither naming an address.

use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::{body::Bytes, header, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use super::{deny::DenyList, unreachable, Validator};
use crate::{
    backend::{ChallengeType, Identifier},
    error::{AcmeError, ErrorType},
};

/// Largest challenge response body read.
const MAX_BODY: usize = 8 * 1024;
const MAX_REDIRECTS: usize = 10;
const KIND: ChallengeType = ChallengeType::Http01;

/// `http:` or `https:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// Where the next request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    scheme: Scheme,
    host: Identifier,
    port: u16,
    path: String,
}

/// What came back.
struct Fetched {
    status: StatusCode,
    location: Option<String>,
    body: Bytes,
}

pub(super) async fn validate(
    v: &Validator,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), AcmeError> {
    let fail = |cause: &dyn std::fmt::Display| unreachable(KIND, identifier, cause);
    let mut target = Target {
        scheme: Scheme::Http,
        host: identifier.clone(),
        port: v.settings.http01_port,
        path: format!("/.well-known/acme-challenge/{token}"),
    };
    for hop in 0..=MAX_REDIRECTS {
        let ips = if hop == 0 {
            v.addresses(KIND, identifier).await?
        } else {
            let found = v.lookup(&target.host).await.map_err(|c| fail(&format!("redirect target: {c}")))?;
            v.permitted(&target.host.value, found).map_err(|c| fail(&c))?
        };
        let response = fetch(v, &ips, &target).await.map_err(|c| fail(&c))?;
        let redirect = matches!(response.status.as_u16(), 301 | 302 | 303 | 307 | 308);
        if redirect {
            let location = response.location.ok_or_else(|| fail(&format!("{} without Location", response.status)))?;
            target = redirect_target(&location, &target, &v.deny).map_err(|c| fail(&c))?;
            continue;
        }
        if response.status != StatusCode::OK {
            tracing::debug!(identifier = %identifier.value, status = %response.status, host = %target.host.value, port = target.port, "http-01 response is not 200");
            return Err(AcmeError::unauthorized(format!(
                "http-01: the challenge response from {} is not 200 OK",
                identifier.value
            )));
        }
        let text = String::from_utf8_lossy(&response.body);
        if text.trim_end() == key_authorization {
            return Ok(());
        }
        return Err(AcmeError::new(ErrorType::IncorrectResponse, "http-01: the response is not the key authorization"));
    }
    Err(fail(&"more than 10 redirects"))
}

/// The target of a redirect from `from` to `location`, or why it is not followed (for the log):
/// only `http:`/`https:`, only ports 80 and 443 for absolute URLs, no IP literal in the deny
/// list. A relative reference keeps `from`'s scheme, host and port.
fn redirect_target(location: &str, from: &Target, deny: &DenyList) -> Result<Target, String> {
    let location = location.trim();
    if location.starts_with('/') && !location.starts_with("//") {
        return Ok(Target { path: location.to_owned(), ..from.clone() });
    }
    // A network-path reference (`//host/path`) takes the current scheme.
    let absolute = match location.strip_prefix("//") {
        Some(rest) => {
            let scheme = if from.scheme == Scheme::Http { "http" } else { "https" };
            format!("{scheme}://{rest}")
        }
        None => location.to_owned(),
    };
    let uri: Uri = absolute.parse().map_err(|_| format!("unparsable redirect `{location}`"))?;
    let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some(other) => return Err(format!("redirect to a `{other}:` URL `{location}`")),
        None => return Err(format!("redirect to a relative path `{location}`")),
    };
    let authority = uri.authority().ok_or_else(|| format!("redirect without a host `{location}`"))?;
    if authority.as_str().contains('@') {
        return Err(format!("redirect with user information `{location}`"));
    }
    let port = uri.port_u16().unwrap_or(scheme.default_port());
    if port != 80 && port != 443 {
        return Err(format!("redirect to port {port} (only 80 and 443 are followed) `{location}`"));
    }
    let name = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("redirect without a host `{location}`"));
    }
    let kind = match name.parse::<IpAddr>() {
        Ok(ip) => {
            if let Some(range) = deny.matching(ip) {
                return Err(format!("redirect to {ip}, in denied range {range}"));
            }
            "ip"
        }
        Err(_) => "dns",
    };
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    Ok(Target { scheme, host: Identifier { kind: kind.into(), value: name }, port, path })
}

/// GET `target` from the first of `ips` that accepts a connection; an error is the cause, for
/// the log.
async fn fetch(v: &Validator, ips: &[IpAddr], target: &Target) -> Result<Fetched, String> {
    let mut causes = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(*ip, target.port);
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                causes.push(format!("{addr}: {e}"));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        return match target.scheme {
            Scheme::Http => request(stream, *ip, target).await,
            Scheme::Https => {
                let name = ServerName::try_from(target.host.value.clone())
                    .map_err(|_| format!("`{}` is not a TLS server name", target.host.value))?;
                let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&v.https))
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("{addr}: TLS handshake: {e}"))?;
                request(tls, *ip, target).await
            }
        }
        .map_err(|e| format!("{addr}: {e}"));
    }
    Err(format!("cannot connect: {}", causes.join("; ")))
}

/// One HTTP/1.1 GET over `io`.
async fn request<T>(io: T, ip: IpAddr, target: &Target) -> Result<Fetched, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = match (target.host.kind.as_str(), ip) {
        ("ip", IpAddr::V6(_)) => format!("[{}]", target.host.value),
        _ => target.host.value.clone(),
    };
    let host = if target.port == target.scheme.default_port() { host } else { format!("{host}:{}", target.port) };
    let request = Request::get(target.path.as_str())
        .header(header::HOST, host)
        .header(header::USER_AGENT, "privca-acme-va")
        .header(header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("response body too large or broken: {e}"))?
        .to_bytes();
    Ok(Fetched { status, location, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> Target {
        Target {
            scheme: Scheme::Http,
            host: Identifier { kind: "dns".into(), value: "client.example".into() },
            port: 5002,
            path: "/.well-known/acme-challenge/t".into(),
        }
    }

    fn deny(ranges: &[&str]) -> DenyList {
        DenyList::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn follow(location: &str) -> Result<Target, String> {
        redirect_target(location, &from(), &DenyList::default())
    }

    #[test]
    fn only_ports_80_and_443_are_followed() {
        assert!(follow("http://127.0.0.1:22/").unwrap_err().contains("port 22"));
        assert!(follow("http://internal.example:8080/x").unwrap_err().contains("port 8080"));
        assert!(follow("https://internal.example:8443/x").is_err());
        assert!(follow("http://internal.example:5002/x").is_err(), "the dev port is only for the first request");
        let t = follow("http://other.example:443/p?q=1").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str(), t.host.value.as_str()),
            (Scheme::Http, 443, "/p?q=1", "other.example")
        );
        let t = follow("https://Other.Example/p").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.host.value.as_str(), t.host.kind.as_str()),
            (Scheme::Https, 443, "other.example", "dns")
        );
        let t = follow("http://other.example/").unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Http, 80));
        let t = follow("https://other.example:80/").unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Https, 80));
        let t = follow("http://[2001:db8::1]/x").unwrap();
        assert_eq!((t.host.kind.as_str(), t.host.value.as_str(), t.port), ("ip", "2001:db8::1", 80));
    }

    #[test]
    fn other_schemes_are_refused() {
        assert!(follow("ftp://other.example/file").unwrap_err().contains("ftp"));
        assert!(follow("gopher://other.example:70/").is_err());
        assert!(follow("file:///etc/passwd").is_err());
        assert!(follow("other.example/path").is_err(), "a bare relative reference");
        assert!(follow("http://user:pw@other.example/").is_err());
        assert!(follow("http:///x").is_err());
    }

    #[test]
    fn relative_redirects_keep_scheme_host_and_port() {
        let t = follow("/.well-known/acme-challenge/other").unwrap();
        assert_eq!(t, Target { path: "/.well-known/acme-challenge/other".into(), ..from() });
        // `//host/path` is a network-path reference, not a path: it is checked like a URL.
        assert!(follow("//127.0.0.1:22/x").unwrap_err().contains("port 22"));
        let t = follow("//other.example/x").unwrap();
        assert_eq!((t.scheme, t.port, t.host.value.as_str()), (Scheme::Http, 80, "other.example"));
    }

    #[test]
    fn ip_literals_in_denied_ranges_are_refused() {
        let list = deny(&["127.0.0.0/8", "10.0.0.0/8", "::1/128", "fe80::/10"]);
        let go = |l: &str| redirect_target(l, &from(), &list);
        assert!(go("http://127.0.0.2/").unwrap_err().contains("127.0.0.0/8"));
        assert!(go("https://10.1.2.3/x").is_err());
        assert!(go("http://[::1]/").is_err());
        assert!(go("http://[::ffff:127.0.0.1]/").is_err(), "an IPv4-mapped address is matched as IPv4");
        assert!(go("http://[fe80::1]:443/").is_err());
        let t = go("http://192.0.2.7/").unwrap();
        assert_eq!((t.host.kind.as_str(), t.host.value.as_str()), ("ip", "192.0.2.7"));
        // A name is checked once resolved, not here.
        assert!(go("http://localhost.example/").is_ok());
    }

    /// Answers each request read from a connection on `listener` with `answer(request line and
    /// headers)`; the requests seen are sent to the returned channel.
    fn serve<F>(listener: tokio::net::TcpListener, answer: F) -> tokio::sync::mpsc::UnboundedReceiver<String>
    where
        F: Fn(&str) -> String + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = s.write_all(answer(&request).as_bytes()).await;
                let _ = tx.send(request);
            }
        });
        rx
    }

    fn validator(port: u16, deny: &[&str]) -> Validator {
        Validator::new(crate::ValidationSettings {
            resolver: Some("127.0.0.1:9".parse().unwrap()),
            http01_port: port,
            tlsalpn01_port: port,
            timeout: std::time::Duration::from_secs(5),
            attempts: 1,
            concurrency: 1,
            retry_delay: std::time::Duration::ZERO,
            deny_ranges: deny.iter().map(|r| r.parse().unwrap()).collect(),
        })
        .unwrap()
    }

    fn loopback() -> Identifier {
        Identifier { kind: "ip".into(), value: "127.0.0.1".into() }
    }

    /// A relative redirect stays on the configured port and is followed to the answer.
    #[tokio::test]
    async fn relative_redirects_are_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut seen = serve(listener, |request| {
            if request.starts_with("GET /.well-known/acme-challenge/tok ") {
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere/tok\r\nContent-Length: 0\r\n\r\n".into()
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\ntok.thumb\n".into()
            }
        });
        validator(port, &[]).validate(ChallengeType::Http01, &loopback(), "tok", "tok.thumb").await.unwrap();
        let first = seen.recv().await.unwrap();
        assert!(first.contains(&format!("host: 127.0.0.1:{port}\r\n")), "{first}");
        assert!(seen.recv().await.unwrap().starts_with("GET /elsewhere/tok HTTP/1.1"));
        let wrong = validator(port, &[]).validate(ChallengeType::Http01, &loopback(), "tok", "tok.other").await;
        assert_eq!(wrong.unwrap_err().kind, ErrorType::IncorrectResponse);
    }

    /// `https:` targets are fetched over TLS, the certificate not verified (self-signed here).
    #[tokio::test]
    async fn https_targets_are_fetched_without_certificate_validation() {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from(include_bytes!("../../tests/data/https-cert.der").to_vec());
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(include_bytes!("../../tests/data/https-key.pk8").to_vec()));
        let config =
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 2048];
            let n = tls.read(&mut buf).await.unwrap();
            tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ntok.thumb").await.unwrap();
            tls.flush().await.unwrap();
            let _ = tx.send((
                String::from_utf8_lossy(&buf[..n]).into_owned(),
                tls.get_ref().1.server_name().map(str::to_owned),
            ));
        });
        let target = Target {
            scheme: Scheme::Https,
            host: Identifier { kind: "dns".into(), value: "https.test".into() },
            port,
            path: "/p".into(),
        };
        let got = fetch(&validator(port, &[]), &["127.0.0.1".parse().unwrap()], &target).await.unwrap();
        assert_eq!((got.status, got.body.as_ref()), (StatusCode::OK, &b"tok.thumb"[..]));
        let (request, sni) = seen.recv().await.unwrap();
        assert!(
            request.starts_with("GET /p HTTP/1.1") && request.contains(&format!("host: https.test:{port}")),
            "{request}"
        );
        assert_eq!(sni.as_deref(), Some("https.test"));
    }

    /// A refused connection, a denied address and a forbidden redirect give the same problem.
    #[tokio::test]
    async fn failures_are_indistinguishable_to_the_client() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _seen = serve(listener, |_| {
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:22/\r\nContent-Length: 0\r\n\r\n".into()
        });
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let run = |v: Validator, kind: ChallengeType| async move {
            v.validate(kind, &loopback(), "tok", "tok.thumb").await.unwrap_err()
        };
        let redirected = run(validator(port, &[]), ChallengeType::Http01).await;
        let refused = run(validator(closed, &[]), ChallengeType::Http01).await;
        let denied = run(validator(port, &["127.0.0.0/8"]), ChallengeType::Http01).await;
        for e in [&redirected, &refused, &denied] {
            assert_eq!(e.kind, ErrorType::Connection);
            assert_eq!(e.detail, "http-01: could not fetch the challenge response from 127.0.0.1");
        }
        let refused = run(validator(closed, &[]), ChallengeType::TlsAlpn01).await;
        let denied = run(validator(port, &["127.0.0.1/32"]), ChallengeType::TlsAlpn01).await;
        for e in [&refused, &denied] {
            assert_eq!(e.kind, ErrorType::Connection);
            assert_eq!(e.detail, "tls-alpn-01: could not fetch the challenge response from 127.0.0.1");
        }
    }
}
