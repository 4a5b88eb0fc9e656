//! The controllers' HTTP servers (metrics, health, webhook receivers) with bounds, since anyone who reaches
//! the port is outside input: a request's head must arrive within [`Limits::header_timeout`], a connection
//! lives at most [`Limits::connection_timeout`] (slow bodies and idle keep-alives included), and at most
//! [`Limits::max_connections`] are open at once (more are closed at once).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

/// The bounds of one server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to receive a request's line and headers.
    pub header_timeout: Duration,
    /// Time a connection may stay open, whatever it does.
    pub connection_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// Serves `router` on `listener` within `limits` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap: closed at once (dropping the stream), never queued.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |req: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    use tower::ServiceExt;
                    router.oneshot(req.map(axum::body::Body::new)).await
                }
            }
        });
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn server(limits: Limits) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::any(|| async { "ok" }));
        tokio::spawn(serve(listener, router, limits));
        addr
    }

    /// Reads until the peer closes; returns how long that took and what was read.
    async fn until_closed(s: &mut TcpStream) -> (Duration, String) {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Err(_) => panic!("still open after 10 s"),
            }
        }
        (t0.elapsed(), String::from_utf8_lossy(&out).into_owned())
    }

    const LIMITS: Limits = Limits {
        header_timeout: Duration::from_millis(300),
        connection_timeout: Duration::from_millis(1500),
        max_connections: 4,
    };

    #[tokio::test]
    async fn a_client_that_sends_its_head_a_byte_at_a_time_is_cut_off() {
        let addr = server(LIMITS).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let drip = tokio::spawn(async move {
            for b in b"GET / HTTP/1.1\r\nHost: x\r\n" {
                if s.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            s
        });
        let mut s = drip.await.unwrap();
        let (_, text) = until_closed(&mut s).await;
        assert!(!text.contains("ok"), "{text}");
    }

    #[tokio::test]
    async fn a_slow_body_and_an_idle_connection_end_with_the_connection_timeout() {
        let addr = server(LIMITS).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            .await
            .unwrap();
        let (took, _) = until_closed(&mut s).await;
        assert!(took < Duration::from_secs(5), "{took:?}");
        // A served request, then an idle keep-alive connection: closed too.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (took, text) = until_closed(&mut s).await;
        assert!(text.contains("200 OK") && text.ends_with("ok"), "{text}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_at_once_and_the_server_recovers() {
        let addr = server(Limits {
            header_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(30),
            max_connections: 4,
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // Let the server accept them all before the next one.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let (took, text) = until_closed(&mut extra).await;
        assert!(
            text.is_empty() && took < Duration::from_secs(2),
            "{took:?} {text}"
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (_, text) = until_closed(&mut s).await;
        assert!(text.ends_with("ok"), "{text}");
    }
}
