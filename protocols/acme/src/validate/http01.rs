//! http-01 (§8.3, RFC 8738 §7): `GET http://<identifier>:<port>/.well-known/acme-challenge/<token>`
//! must return the key authorization (trailing whitespace ignored). Redirects to other `http:`
//! URLs are followed (at most 10), each target resolved through the validator's resolver.

use std::net::{IpAddr, SocketAddr};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::{body::Bytes, header, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Validator;
use crate::{
    backend::Identifier,
    error::{AcmeError, ErrorType},
};

/// Largest challenge response body read.
const MAX_BODY: usize = 8 * 1024;
const MAX_REDIRECTS: usize = 10;

fn connection(detail: String) -> AcmeError {
    AcmeError::new(ErrorType::Connection, detail)
}

pub(super) async fn validate(
    v: &Validator,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), AcmeError> {
    let mut host = identifier.clone();
    let mut port = v.settings.http01_port;
    let mut path = format!("/.well-known/acme-challenge/{token}");
    for _ in 0..=MAX_REDIRECTS {
        let ips = v.addresses(&host).await?;
        let (status, location, body) = fetch(&ips, port, &host, &path).await?;
        if status.is_redirection() {
            let location = location.ok_or_else(|| connection("redirect without Location".into()))?;
            (host, port, path) = redirect_target(&location, &host, port)?;
            continue;
        }
        if status != StatusCode::OK {
            return Err(AcmeError::unauthorized(format!("http-01: {} answered {status}", identifier.value)));
        }
        let text = String::from_utf8_lossy(&body);
        if text.trim_end() == key_authorization {
            return Ok(());
        }
        return Err(AcmeError::new(ErrorType::IncorrectResponse, "http-01: the response is not the key authorization"));
    }
    Err(connection("http-01: too many redirects".into()))
}

fn redirect_target(location: &str, host: &Identifier, port: u16) -> Result<(Identifier, u16, String), AcmeError> {
    if location.starts_with('/') {
        return Ok((host.clone(), port, location.to_owned()));
    }
    let uri: Uri = location.parse().map_err(|_| connection(format!("bad redirect `{location}`")))?;
    if uri.scheme_str() != Some("http") {
        return Err(connection("http-01: only redirects to http: URLs are followed".into()));
    }
    let name = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let kind = if name.parse::<IpAddr>().is_ok() { "ip" } else { "dns" };
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    Ok((Identifier { kind: kind.into(), value: name }, uri.port_u16().unwrap_or(port), path))
}

async fn fetch(
    ips: &[IpAddr],
    port: u16,
    host: &Identifier,
    path: &str,
) -> Result<(StatusCode, Option<String>, Bytes), AcmeError> {
    let mut last = connection(format!("cannot connect to {}", host.value));
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last = connection(format!("http-01: cannot connect to {addr}: {e}"));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connection(format!("http-01: {addr}: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host_header = match (host.kind.as_str(), ip) {
            ("ip", IpAddr::V6(_)) => format!("[{}]", host.value),
            _ => host.value.clone(),
        };
        let host_header = if port == 80 { host_header } else { format!("{host_header}:{port}") };
        let request = Request::get(path)
            .header(header::HOST, host_header)
            .header(header::USER_AGENT, "privca-acme-va")
            .header(header::ACCEPT, "*/*")
            .body(Empty::<Bytes>::new())
            .map_err(|_| AcmeError::internal())?;
        let response = sender.send_request(request).await.map_err(|e| connection(format!("http-01: {addr}: {e}")))?;
        let status = response.status();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| AcmeError::unauthorized("http-01: response body too large or broken"))?
            .to_bytes();
        return Ok((status, location, body));
    }
    Err(last)
}
