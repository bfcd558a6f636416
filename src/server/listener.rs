//! One listener's accept loop and the limits every connection on it lives under, so a slow or
//! idle client holds a socket for a bounded time and a flood cannot exhaust the process's file
//! descriptors:
//!
//! * **Connection cap** (`server.max_connections` per listener, a semaphore): a connection
//!   beyond it is accepted and closed at once, so the backlog never fills and the connections
//!   already open keep being served. Metrics `privca_connections_open{listener}` (gauge) and
//!   `privca_connections_refused_total{listener}`.
//! * **TLS handshake timeout** (`server.tls_handshake_timeout`): the whole handshake.
//! * **Header read timeout** (`server.header_read_timeout`): HTTP/1.1 through hyper's own timer
//!   (it starts whenever the connection waits for a request, so on HTTP/1.1 it also bounds the
//!   wait between kept-alive requests); for HTTP/2 and for the protocol-detection phase, a
//!   per-connection watchdog counts it from the first byte received while no request is in
//!   flight.
//! * **Idle timeout** (`server.idle_timeout`): the watchdog closes (gracefully: GOAWAY on
//!   HTTP/2) a connection with no request in flight that has received nothing for that long.
//! * **Whole-request deadline** (`server.request_timeout`): tower-http's `TimeoutLayer` around
//!   every router (see `server::serve`); handlers read the body inside it, so a trickled body is
//!   cut too, and hyper closes a connection whose request body was not read to the end.
//!
//! A request counts as in flight from the moment hyper hands it over until its response body
//! has been written. On shutdown the listener stops accepting, every connection finishes its
//! requests (graceful), and after `server.shutdown_grace` the rest are dropped.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    Router,
};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::{watch, Notify, Semaphore},
    task::JoinSet,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;

use crate::{config::ServerConfig, error::CaError};

/// File descriptors kept out of the connection budget: ledger pool, HSM, logs, CA files.
pub const RESERVED_FDS: u64 = 512;
/// Largest derived per-listener connection cap.
const DEFAULT_CAP_CEILING: usize = 10_000;
/// Smallest derived per-listener connection cap.
const DEFAULT_CAP_FLOOR: usize = 16;
/// How long a connection closed by the watchdog may take to finish closing.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How many listeners share the descriptor budget.
const LISTENERS: u64 = 3;

/// The limits of one listener's connections.
#[derive(Debug, Clone)]
pub struct Limits {
    /// See `server.header_read_timeout`.
    pub header_read_timeout: Duration,
    /// See `server.idle_timeout`.
    pub idle_timeout: Duration,
    /// See `server.tls_handshake_timeout`.
    pub tls_handshake_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// See `server.shutdown_grace`.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The configured limits with the connection cap `max_connections` (see [`connection_cap`]).
    pub fn new(cfg: &ServerConfig, max_connections: usize) -> Self {
        Self {
            header_read_timeout: cfg.header_read_timeout,
            idle_timeout: cfg.idle_timeout,
            tls_handshake_timeout: cfg.tls_handshake_timeout,
            max_connections,
            shutdown_grace: cfg.shutdown_grace,
        }
    }
}

/// Raises the soft open-file limit to the hard one and returns the soft limit in force
/// (`u64::MAX` when unlimited).
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        match setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }) {
            Ok(()) => tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit to the hard limit"),
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The per-listener connection cap: `configured`, checked against the open-file limit
/// `nofile`, or derived from it (what is left after [`RESERVED_FDS`], shared by the three
/// listeners, between 16 and 10,000).
pub fn connection_cap(configured: Option<usize>, nofile: u64) -> Result<usize, CaError> {
    let budget = nofile.saturating_sub(RESERVED_FDS) / LISTENERS;
    match configured {
        Some(n) if (n as u64).saturating_mul(LISTENERS).saturating_add(RESERVED_FDS) > nofile => {
            Err(CaError::internal(format!(
                "server.max_connections = {n}: three listeners with {n} connections each and {RESERVED_FDS} descriptors \
                 for the rest do not fit the open-file limit of {nofile}; lower it to {budget} or raise `ulimit -n`"
            )))
        }
        Some(n) => Ok(n),
        None => Ok(usize::try_from(budget).unwrap_or(usize::MAX).clamp(DEFAULT_CAP_FLOOR, DEFAULT_CAP_CEILING)),
    }
}

/// Serves `listener` until `stop` flips, under `limits`. `name` labels the metrics.
pub async fn run(
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    metrics::gauge!("privca_connections_open", "listener" => name).set(0.0);
    metrics::counter!("privca_connections_refused_total", "listener" => name).absolute(0);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: let connections close before accepting again.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            _ = stop.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("privca_connections_refused_total", "listener" => name).increment(1);
            tracing::debug!(listener = name, %peer, "connection cap reached; closing the new connection");
            drop(stream);
            continue;
        };
        metrics::gauge!("privca_connections_open", "listener" => name).increment(1.0);
        let open = Open { _permit: permit, listener: name };
        // Responses are written in one go; without TCP_NODELAY a client that delays ACKs
        // would add ~40 ms (Nagle) to every request on a kept-alive connection.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let (router, builder, limits, stop, tls) =
            (router.clone(), builder.clone(), limits.clone(), stop.clone(), tls.clone());
        tasks.spawn(async move {
            let _open = open;
            match tls {
                None => drive(stream, peer, None, router, builder, &limits, stop).await,
                Some(acceptor) => {
                    let mut stop_handshake = stop.clone();
                    let handshake = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream));
                    let stream = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = stop_handshake.changed() => return,
                    };
                    // A verified client certificate chain travels with every request of the
                    // connection.
                    let chain = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|certs| ClientChain(Arc::new(certs.iter().map(|c| c.to_vec()).collect())));
                    drive(stream, peer, chain, router, builder, &limits, stop).await
                }
            }
        });
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, drain).await.is_err() {
        tracing::warn!(listener = name, "grace period over; closing remaining connections");
        tasks.abort_all();
    }
}

/// The TLS client certificate chain the connection's handshake verified (DER, leaf first), in
/// every request's extensions. `server::routes` hands it to the protocols that read one. On the
/// admin listener the handshake checks only that the client holds the key
/// ([`super::client_auth::Deferred`]); the admin authentication verifies the chain.
#[derive(Debug, Clone)]
pub struct ClientChain(pub Arc<Vec<Vec<u8>>>);

/// One open connection: holds its slot under the cap and keeps the gauge current.
struct Open {
    _permit: tokio::sync::OwnedSemaphorePermit,
    listener: &'static str,
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("privca_connections_open", "listener" => self.listener).decrement(1.0);
    }
}

/// Serves HTTP on `io` until the client leaves, the watchdog expires or the server stops.
/// Every request carries the client's address (`ConnectInfo`, for per-address limits) and the
/// verified client certificate chain, if any.
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    chain: Option<ClientChain>,
    router: Router,
    builder: Builder<TokioExecutor>,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::new());
    let io = ActivityIo { inner: io, state: state.clone() };
    let service_state = state.clone();
    let service = tower::service_fn(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        if let Some(chain) = &chain {
            req.extensions_mut().insert(chain.clone());
        }
        let busy = ConnState::begin(&service_state);
        let router = router.clone();
        async move {
            let response = tower::ServiceExt::oneshot(router, req).await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Tracked { inner: body, _busy: busy })))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    loop {
        let wake = state.next_check(limits);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = state.idle.notified() => continue,
            _ = sleep_until(wake) => {
                if state.expired(limits) {
                    tracing::debug!("closing a slow or idle connection");
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CLOSE_GRACE, conn.as_mut()).await;
                    return;
                }
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
                return;
            }
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the watchdog knows about a connection: requests in flight, when it last became idle
/// and when the first byte arrived since (milliseconds from `start`).
struct ConnState {
    start: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    first_byte: AtomicU64,
    /// Signalled when the last request in flight finishes.
    idle: Notify,
}

/// `first_byte` when nothing arrived since the connection became idle.
const NONE: u64 = u64::MAX;

impl ConnState {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NONE),
            idle: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn begin(this: &Arc<Self>) -> Busy {
        this.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(this.clone())
    }

    fn received(&self) {
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let _ = self.first_byte.compare_exchange(NONE, self.now_ms(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// When to look again: `None` while a request is in flight (the end of the last one
    /// wakes the watchdog).
    fn next_check(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let now = Instant::now();
        Some(match self.first_byte.load(Ordering::SeqCst) {
            NONE => (self.at(self.idle_since.load(Ordering::SeqCst)) + limits.idle_timeout)
                .min(now + limits.header_read_timeout),
            first => self.at(first) + limits.header_read_timeout,
        })
    }

    /// No request in flight, and either the headers of the next one are late or nothing came.
    fn expired(&self, limits: &Limits) -> bool {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let now = Instant::now();
        match self.first_byte.load(Ordering::SeqCst) {
            NONE => now >= self.at(self.idle_since.load(Ordering::SeqCst)) + limits.idle_timeout,
            first => now >= self.at(first) + limits.header_read_timeout,
        }
    }
}

/// A request in flight; dropped with its response body (or the request, if it is abandoned).
struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.first_byte.store(NONE, Ordering::SeqCst);
            self.0.idle_since.store(self.0.now_ms(), Ordering::SeqCst);
            self.0.idle.notify_one();
        }
    }
}

/// A response body that keeps its request in flight until hyper has written and dropped it.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's byte stream, telling the watchdog when bytes arrive.
struct ActivityIo<I> {
    inner: I,
    state: Arc<ConnState>,
}

impl<I: AsyncRead + Unpin> AsyncRead for ActivityIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ActivityIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    /// A plain HTTP listener on an ephemeral port with a GET `/` and a POST `/echo` (reads its
    /// body), under `limits` and a 1 s request deadline.
    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let router =
            Router::new().route("/", get(|| async { "ok" })).route("/echo", post(|body: Bytes| async move { body }));
        let router = super::super::layered(router, Duration::from_secs(1));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run("test", socket, None, router, limits, stop_rx));
        (addr, stop, task)
    }

    fn limits(max_connections: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(600),
            idle_timeout: Duration::from_millis(900),
            tls_handshake_timeout: Duration::from_secs(1),
            max_connections,
            shutdown_grace: Duration::from_secs(1),
        }
    }

    /// Reads until EOF or reset; what was read and how long it took.
    async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
        let start = Instant::now();
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
                Err(_) => panic!("the server did not close the connection within 10 s"),
            }
        }
        (String::from_utf8_lossy(&all).into_owned(), start.elapsed())
    }

    async fn fetch(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        until_closed(&mut s).await.0
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_at_once_and_the_others_served() {
        let (addr, stop, task) = start(limits(2)).await;
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        a.write_all(b"GET").await.unwrap();
        b.write_all(b"GET").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (text, took) = until_closed(&mut c).await;
        assert!(text.is_empty() && took < Duration::from_millis(300), "{text:?} after {took:?}");
        // The open ones are still served.
        a.write_all(b" / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        assert!(until_closed(&mut a).await.0.starts_with("HTTP/1.1 200"));
        drop(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(fetch(addr).await.starts_with("HTTP/1.1 200"), "a slot freed is used again");
        drop(b);
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// Sends `bytes` one per 100 ms; how long until the server closed the connection.
    async fn trickle(addr: SocketAddr, bytes: &[u8]) -> Option<Duration> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        for byte in bytes {
            if s.write_all(&[*byte]).await.is_err() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut probe = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await {
                return Some(start.elapsed());
            }
        }
        None
    }

    #[tokio::test]
    async fn slow_headers_are_cut_at_the_header_read_timeout() {
        let (addr, stop, task) = start(limits(16)).await;
        // HTTP/1.1 (hyper's timer) and an HTTP/2 preface (the watchdog, from the first byte).
        for bytes in [
            &b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaa"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let took = trickle(addr, bytes).await;
            assert!(
                took.is_some_and(|t| t >= Duration::from_millis(500) && t < Duration::from_millis(1500)),
                "{:?}: closed after {took:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed() {
        let (addr, stop, task) = start(limits(16)).await;
        // Nothing sent at all.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (_, took) = until_closed(&mut s).await;
        assert!(took < Duration::from_millis(1500), "{took:?}");
        // Kept alive after a response, then silent.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let (text, took) = until_closed(&mut s).await;
        assert!(text.starts_with("HTTP/1.1 200") && took < Duration::from_millis(1500), "{text:?} {took:?}");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_at_the_request_deadline() {
        let (addr, stop, task) = start(limits(16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n").await.unwrap();
        let start = Instant::now();
        let mut reply = Vec::new();
        for _ in 0..100 {
            if s.write_all(b"a").await.is_err() {
                break;
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => reply.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let took = start.elapsed();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
        assert!(took < Duration::from_millis(2500), "closed after {took:?}");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[test]
    fn the_cap_is_derived_from_the_open_file_limit() {
        assert_eq!(connection_cap(None, 1024).unwrap(), 170);
        assert_eq!(connection_cap(None, 20_000).unwrap(), 6_496);
        assert_eq!(connection_cap(None, u64::MAX).unwrap(), 10_000);
        assert_eq!(connection_cap(None, 100).unwrap(), 16);
    }

    #[test]
    fn a_configured_cap_must_fit_the_open_file_limit() {
        assert_eq!(connection_cap(Some(170), 1024).unwrap(), 170);
        let e = connection_cap(Some(171), 1024).unwrap_err().to_string();
        assert!(e.contains("server.max_connections") && e.contains("1024"), "{e}");
        assert_eq!(connection_cap(Some(5_000), 20_000).unwrap(), 5_000);
    }
}
