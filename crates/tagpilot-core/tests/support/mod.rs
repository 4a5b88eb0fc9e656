//! Loopback servers and process limits for the hostile-input tests: a small HTTP/1.1 server that records what
//! it received (127.0.0.1 plays the server under test, 127.0.0.2 "another host"), a 1 GiB address-space
//! limit, and the peak RSS.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request as a server saw it: the request line and its Authorization header.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET /path HTTP/1.1`.
    pub line: String,
    /// The Authorization header.
    pub authorization: Option<String>,
}

/// Answers a request (line, Authorization) with a whole HTTP response.
pub type Handler = Arc<dyn Fn(&str, Option<&str>) -> String + Send + Sync>;

/// Serves HTTP/1.1 on `ip` (one request per connection); returns the port and what it received.
pub async fn serve(ip: &str, handler: Handler) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (log, handler) = (log.clone(), handler.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                let authorization = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .map(|l| l[14..].trim().to_string());
                log.lock().unwrap().push(Seen {
                    line: line.clone(),
                    authorization: authorization.clone(),
                });
                let reply = handler(&line, authorization.as_deref());
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// An HTTP response.
pub fn reply(status: &str, headers: &[(&str, String)], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

/// The Authorization headers a server received.
pub fn authorizations(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|s| s.authorization.clone())
        .collect()
}

/// Limits this test process's address space to 1 GiB.
pub fn one_gib() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let limit = libc::rlimit {
            rlim_cur: 1 << 30,
            rlim_max: 1 << 30,
        };
        // SAFETY: setrlimit with a valid struct; it only lowers this process's own limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    });
}

/// Peak RSS of this process so far, in MiB.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
