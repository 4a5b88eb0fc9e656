//! A fault-injecting loopback proxy in front of the real (plain HTTP) registry, for behaviours that
//! distribution 2.8 does not have: paging styles of other registries (Link headers, `last=` only, Quay's
//! 413 above n=100, Nexus Links without the port), 429/5xx with `Retry-After`, garbage and huge bodies.
//! It speaks just enough HTTP/1.1 (GET and HEAD, keep-alive) and binds 127.0.0.1 on a free port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How `tags/list` pages are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// Whatever the upstream registry answers (distribution 2.8 ignores `n` and `last`).
    Passthrough,
    /// Honours `n` and `last`, with a relative `Link` to the next page.
    LinkRelative,
    /// Honours `n` and `last`, with an absolute `Link`.
    LinkAbsolute,
    /// An absolute `Link` without the port, as Nexus sends.
    LinkWithoutPort,
    /// A `Link` to another host.
    LinkOtherHost,
    /// Honours `n` and `last` but sends no `Link`.
    LastOnly,
    /// Quay: 413 when `n` > 100, at most 50 per page, relative `Link`.
    Quay,
}

/// A scripted fault on `tags/list`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status (with `Retry-After` when given) instead of the page.
    Status(u16, Option<String>),
    /// Answer 200 with this content type and body.
    Body(&'static str, Vec<u8>),
}

#[derive(Default)]
struct State {
    paging: Option<Paging>,
    faults: Vec<Fault>,
    requests: Vec<String>,
    /// As a forward proxy: the `Proxy-Authorization` value required.
    proxy_authorization: Option<String>,
    /// Requests being answered now, and the most there were at once.
    in_flight: usize,
    peak_in_flight: usize,
    /// How long each `tags/list` reply is held back.
    delay: std::time::Duration,
}

/// A running proxy; dropped, it stops.
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`127.0.0.1:port` of a plain registry) with a paging style.
    pub async fn start(upstream: &str, paging: Paging) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            paging: Some(paging),
            ..State::default()
        }));
        let (st, up) = (state.clone(), upstream.to_string());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (st, up, http) = (st.clone(), up.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, addr, &up, &http, &st).await;
                });
            }
        });
        FaultProxy { addr, state, task }
    }

    /// Starts an HTTP forward proxy (absolute-form requests, loopback targets only) that requires these
    /// credentials in `Proxy-Authorization` and answers 407 otherwise.
    pub async fn start_forward_proxy(username: &str, password: &str) -> FaultProxy {
        use base64::Engine;
        let proxy = FaultProxy::start("127.0.0.1:9", Paging::Passthrough).await;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        proxy.state.lock().unwrap().proxy_authorization = Some(format!("Basic {basic}"));
        proxy
    }

    /// `127.0.0.1:port`, to use as the registry host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Faults served, in order, to the next `tags/list` requests.
    pub fn inject(&self, faults: Vec<Fault>) {
        self.state.lock().unwrap().faults = faults;
    }

    /// Holds every `tags/list` reply back this long (to make concurrency visible).
    pub fn delay_replies(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// The most requests that were being answered at the same time.
    pub fn peak_in_flight(&self) -> usize {
        self.state.lock().unwrap().peak_in_flight
    }

    /// The request lines seen so far (`GET /v2/...`).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn serve(
    sock: tokio::net::TcpStream,
    me: SocketAddr,
    upstream: &str,
    http: &reqwest::Client,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let (read, mut write) = sock.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            read.read_line(&mut h).await?;
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("/").to_string(),
        );
        state
            .lock()
            .unwrap()
            .requests
            .push(format!("{method} {target}"));
        let delay = {
            let mut st = state.lock().unwrap();
            st.in_flight += 1;
            st.peak_in_flight = st.peak_in_flight.max(st.in_flight);
            st.delay
        };
        if target.contains("/tags/list") && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let required = state.lock().unwrap().proxy_authorization.clone();
        let reply = match (target.strip_prefix("http://"), required) {
            (Some(absolute), Some(required)) => {
                let given = headers
                    .iter()
                    .find(|(k, _)| k == "proxy-authorization")
                    .map(|(_, v)| v.as_str());
                let (host, path) = absolute
                    .split_once('/')
                    .map_or((absolute, "/".to_string()), |(h, p)| (h, format!("/{p}")));
                if given != Some(required.as_str()) {
                    Reply {
                        status: 407,
                        headers: vec![(
                            "Proxy-Authenticate".into(),
                            "Basic realm=\"proxy\"".into(),
                        )],
                        body: vec![],
                    }
                } else if !host.starts_with("127.0.0.1:") {
                    Reply {
                        status: 403,
                        headers: vec![],
                        body: b"loopback targets only".to_vec(),
                    }
                } else {
                    respond(&method, &path, &headers, me, host, http, state).await
                }
            }
            _ => respond(&method, &target, &headers, me, upstream, http, state).await,
        };
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        state.lock().unwrap().in_flight -= 1;
        write.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            write.write_all(&reply.body).await?;
        }
        write.flush().await?;
    }
}

async fn respond(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    me: SocketAddr,
    upstream: &str,
    http: &reqwest::Client,
    state: &Mutex<State>,
) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(repo) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.strip_suffix("/tags/list"))
    {
        let fault = {
            let mut s = state.lock().unwrap();
            (!s.faults.is_empty()).then(|| s.faults.remove(0))
        };
        match fault {
            Some(Fault::Status(code, retry_after)) => {
                let mut h = vec![("Content-Type".into(), "application/json".into())];
                if let Some(r) = retry_after {
                    h.push(("Retry-After".into(), r));
                }
                let body = format!(
                    "{{\"errors\":[{{\"code\":\"INJECTED\",\"message\":\"injected {code}\"}}]}}"
                );
                return Reply {
                    status: code,
                    headers: h,
                    body: body.into_bytes(),
                };
            }
            Some(Fault::Body(ct, body)) => {
                return Reply {
                    status: 200,
                    headers: vec![("Content-Type".into(), ct.into())],
                    body,
                };
            }
            None => {}
        }
        let paging = state.lock().unwrap().paging.unwrap_or(Paging::Passthrough);
        let url = format!("http://{upstream}/v2/{repo}/tags/list");
        let Ok(resp) = http.get(&url).send().await else {
            return Reply {
                status: 502,
                headers: vec![],
                body: vec![],
            };
        };
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default().to_vec();
        if paging == Paging::Passthrough || status != 200 {
            return Reply {
                status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body,
            };
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut all: Vec<String> = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        all.sort();
        let param = |k: &str| {
            query.split('&').find_map(|kv| {
                kv.split_once('=')
                    .filter(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let mut n: usize = param("n").and_then(|n| n.parse().ok()).unwrap_or(100);
        if paging == Paging::Quay {
            if n > 100 {
                return Reply {
                    status: 413,
                    headers: vec![],
                    body: b"{\"error\": \"too many tags requested\"}".to_vec(),
                };
            }
            n = n.min(50);
        }
        let last = param("last").map(|l| percent_decode(&l));
        let start = last.map_or(0, |l| all.partition_point(|t| t.as_str() <= l.as_str()));
        let page: Vec<&String> = all.iter().skip(start).take(n).collect();
        let more = start + page.len() < all.len();
        let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
        if more {
            let next = format!(
                "/v2/{repo}/tags/list?n={n}&last={}",
                page.last().map(|s| s.as_str()).unwrap_or("")
            );
            let link = match paging {
                Paging::LinkRelative | Paging::Quay => Some(next),
                Paging::LinkAbsolute => Some(format!("http://{me}{next}")),
                Paging::LinkWithoutPort => Some(format!("http://{}{next}", me.ip())),
                Paging::LinkOtherHost => Some(format!("http://registry.invalid{next}")),
                _ => None,
            };
            if let Some(l) = link {
                h.push(("Link".into(), format!("<{l}>; rel=\"next\"")));
            }
        }
        let body = serde_json::json!({"name": repo, "tags": page})
            .to_string()
            .into_bytes();
        return Reply {
            status: 200,
            headers: h,
            body,
        };
    }
    // Everything else goes to the registry as it is.
    let mut req = http.request(
        method.parse().unwrap_or(reqwest::Method::GET),
        format!("http://{upstream}{target}"),
    );
    for (k, v) in headers {
        if k == "accept" || k == "authorization" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    let Ok(resp) = req.send().await else {
        return Reply {
            status: 502,
            headers: vec![],
            body: vec![],
        };
    };
    let status = resp.status().as_u16();
    let keep = ["content-type", "docker-content-digest", "www-authenticate"];
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| keep.contains(&k.as_str()))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.bytes().await.unwrap_or_default().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%' && i + 2 < b.len())
            .then(|| {
                std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        if let Some(v) = escaped {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
