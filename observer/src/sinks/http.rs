//! A deliberately small HTTP/1.1 server for the live timeline: `GET /events` streams it as
//! NDJSON (replaying what is still in memory first), `GET /metrics` serves the metrics
//! (OpenMetrics or the classic text format, by `Accept`), `GET /healthz` says the daemon is
//! alive. Nothing changes state. Requests are bounded in size and time, connections in number.
//!
//! Written by hand rather than with hyper or axum: three fixed `GET` routes over tokio's
//! `TcpListener`, which the daemon already has, in a static binary for a crash kernel's
//! small memory; a server framework would bring its own request parsing and connection
//! handling for no route this needs.
use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, broadcast},
    time::timeout,
};

use super::{jsonl::encode, metrics::Metrics};
use crate::event::Event;

/// Largest request head accepted.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// First and longest wait after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent connections served; one more is answered 503 at once and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Bytes of recent timeline kept for replay to new `/events` clients.
const HISTORY_BYTES: usize = 4 << 20;

/// One batch of timeline events, encoded as NDJSON once and shared by every client.
type Encoded = Arc<Vec<u8>>;

/// Encoded batches shared by the timeline and every connection.
#[derive(Clone)]
pub struct Feed {
    live: broadcast::Sender<Encoded>,
    history: Arc<Mutex<History>>,
}

#[derive(Default)]
struct History {
    batches: VecDeque<Encoded>,
    bytes: usize,
    /// Batches dropped from the front (a replay then starts with a note).
    evicted: u64,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    #[must_use]
    pub fn new() -> Self {
        Self {
            live: broadcast::channel(1024).0,
            history: Arc::new(Mutex::new(History::default())),
        }
    }

    /// Publishes a batch of timeline events to history and to connected clients.
    pub fn publish(&self, batch: &[Event]) {
        let mut buf = Vec::new();
        encode(&mut buf, batch);
        let buf = Arc::new(buf);
        let mut h = self.history.lock().expect("history lock");
        h.bytes += buf.len();
        h.batches.push_back(Arc::clone(&buf));
        while h.bytes > HISTORY_BYTES {
            let Some(old) = h.batches.pop_front() else {
                break;
            };
            h.bytes -= old.len();
            h.evicted += 1;
        }
        // No receivers is fine.
        let _ = self.live.send(buf);
    }

    fn subscribe(&self) -> (Vec<Encoded>, u64, broadcast::Receiver<Encoded>) {
        let h = self.history.lock().expect("history lock");
        // Subscribe under the lock: nothing published between replay and live is lost.
        let rx = self.live.subscribe();
        (h.batches.iter().cloned().collect(), h.evicted, rx)
    }
}

/// Binds `addr`; the caller reports a failure and carries on without HTTP.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, feed: Feed, metrics: Option<Arc<Metrics>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                stream
            }
            // EMFILE, ENFILE, ENOBUFS, ...: the condition lasts, so retrying at once would
            // spin a CPU the dump needs. Wait, longer each time, then try again.
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "HTTP accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            let mut stream = stream;
            let _ = respond(
                &mut stream,
                "503 Service Unavailable",
                "too many connections\n",
            )
            .await;
            continue;
        };
        let feed = feed.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection(stream, feed, metrics.as_deref()).await;
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    feed: Feed,
    metrics: Option<&Metrics>,
) -> std::io::Result<()> {
    let Ok(head) = timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await else {
        return respond(&mut stream, "408 Request Timeout", "request timeout\n").await;
    };
    let Some(head) = head? else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "request too large\n",
        )
        .await;
    };
    match route(&head) {
        Route::Health => respond(&mut stream, "200 OK", "ok\n").await,
        Route::Metrics => match metrics {
            // Prometheus asks for OpenMetrics; everything else (curl, promtool) gets the
            // classic text format.
            Some(m) if wants_openmetrics(&head) => {
                respond_typed(
                    &mut stream,
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    &m.encode(),
                )
                .await
            }
            Some(m) => {
                respond_typed(
                    &mut stream,
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    &m.encode_classic(),
                )
                .await
            }
            None => respond(&mut stream, "404 Not Found", "no metrics\n").await,
        },
        Route::Events => stream_events(&mut stream, &feed).await,
        Route::NotFound => {
            respond(
                &mut stream,
                "404 Not Found",
                "endpoints: /events /metrics /healthz\n",
            )
            .await
        }
        Route::BadMethod => respond(&mut stream, "405 Method Not Allowed", "only GET\n").await,
        Route::Bad => respond(&mut stream, "400 Bad Request", "bad request\n").await,
    }
}

/// Whether `head` holds the blank line that ends a request head (CRLF or bare LF).
#[must_use]
pub fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// Reads up to the blank line ending the request head; `None` if it exceeds the bound.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head_complete(&head) {
        if head.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok((head.len() <= MAX_REQUEST_BYTES).then_some(head))
}

/// Whether the request's `Accept` header asks for OpenMetrics.
#[must_use]
pub fn wants_openmetrics(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("accept:") && l.contains("application/openmetrics-text")
    })
}

/// What a request head asks for. Only `GET` of three paths is served; nothing changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Events,
    Metrics,
    NotFound,
    BadMethod,
    Bad,
}

/// The route of a request head (its first line: `GET /events HTTP/1.1`); any bytes are
/// accepted, anything unexpected is [`Route::Bad`] or [`Route::NotFound`].
#[must_use]
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    if method != "GET" {
        return Route::BadMethod;
    }
    match target.split('?').next().unwrap_or_default() {
        "/healthz" => Route::Health,
        "/events" => Route::Events,
        "/metrics" => Route::Metrics,
        _ => Route::NotFound,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    respond_typed(stream, status, "text/plain; charset=utf-8", body).await
}

async fn respond_typed(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

async fn stream_events(stream: &mut TcpStream, feed: &Feed) -> std::io::Result<()> {
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        )
        .await?;
    let (history, evicted, mut live) = feed.subscribe();
    if evicted > 0 {
        let note = format!("{{\"kind\":\"stream_note\",\"replay_truncated_batches\":{evicted}}}\n");
        stream.write_all(note.as_bytes()).await?;
    }
    for batch in history {
        stream.write_all(&batch).await?;
    }
    loop {
        match live.recv().await {
            Ok(batch) => stream.write_all(&batch).await?,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let note = format!("{{\"kind\":\"stream_note\",\"lagged_batches\":{missed}}}\n");
                stream.write_all(note.as_bytes()).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return stream.shutdown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, Source};

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Events
        );
        assert_eq!(route(b"GET /healthz?x=1 HTTP/1.0\r\n\r\n"), Route::Health);
        assert_eq!(route(b"POST /events HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /nope HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"\x00\xff garbage"), Route::Bad);
        assert!(wants_openmetrics(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"));
        assert!(!wants_openmetrics(
            b"GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
        ));
    }

    #[tokio::test]
    async fn events_replays_history_then_streams_live() {
        let feed = Feed::new();
        feed.publish(&[Event::new(
            1,
            Source::Observer,
            Detail::SelfTest { seq: 1, tid: 1 },
        )]);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, feed.clone(), None));

        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /events HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Wait for the replayed line, then publish a live one and wait for it; a stream that
        // closes early or stalls fails the test instead of spinning.
        while !String::from_utf8_lossy(&got).contains("\"seq\":1") {
            let n = timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("the replayed line arrives")
                .unwrap();
            assert!(n > 0, "stream closed before the replayed line");
            got.extend_from_slice(&buf[..n]);
        }
        feed.publish(&[Event::new(
            2,
            Source::Observer,
            Detail::SelfTest { seq: 2, tid: 1 },
        )]);
        while !String::from_utf8_lossy(&got).contains("\"seq\":2") {
            let n = timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("the live line arrives")
                .unwrap();
            assert!(n > 0, "stream closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let lines: Vec<Event> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        server.abort();
    }

    #[tokio::test]
    async fn a_connection_beyond_the_limit_gets_503_at_once() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Feed::new(), None));
        // Clients that never finish their request head: each holds a slot for REQUEST_TIMEOUT.
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /events HTTP/1.1\r\n").await.unwrap();
            held.push(c);
        }
        // The server accepts in order, so the slots are all taken when it accepts this one.
        let mut late = TcpStream::connect(addr).await.unwrap();
        let mut reply = String::new();
        timeout(Duration::from_secs(2), late.read_to_string(&mut reply))
            .await
            .expect("answered at once, not after the request timeout")
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        drop(held);
        server.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_past_the_request_timeout_gets_408() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Feed::new(), None));
        let started = tokio::time::Instant::now();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /events HTTP/1.1\r\n").await.unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        // Paused time jumps straight to the next timer: the answer came at the timeout.
        assert!(
            started.elapsed() >= REQUEST_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        server.abort();
    }

    #[tokio::test]
    async fn unknown_paths_get_404_naming_every_endpoint() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Feed::new(), None));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /nope HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        let endpoints = reply.split("\r\n\r\n").nth(1).unwrap();
        for path in ["/events", "/metrics", "/healthz"] {
            assert!(endpoints.contains(path), "{endpoints}");
        }
        server.abort();
    }

    #[tokio::test]
    async fn oversized_request_is_refused() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Feed::new(), None));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let huge = format!(
            "GET /events HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST_BYTES * 2)
        );
        let _ = client.write_all(huge.as_bytes()).await;
        let mut reply = String::new();
        let _ = client.read_to_string(&mut reply).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
        server.abort();
    }
}
