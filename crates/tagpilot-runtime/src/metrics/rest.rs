//! `rest_client_requests_total{code,method,host}`: every request of the API client, counted by a tower layer
//! under kube's client as client-go counts them (`code` is the HTTP status, `<error>` when none came back).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    code: String,
    method: String,
    host: String,
}

/// The counter family.
pub(super) type Requests = Family<RequestLabels, Counter>;

/// The layer that counts the API client's requests to `host`.
#[derive(Clone)]
pub struct CountRequests {
    requests: Requests,
    host: Arc<str>,
}

impl CountRequests {
    pub(super) fn new(requests: Requests, host: &str) -> CountRequests {
        CountRequests {
            requests,
            host: host.into(),
        }
    }
}

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service under [`CountRequests`].
pub struct Counted<S> {
    inner: S,
    layer: CountRequests,
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for Counted<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let method = req.method().to_string();
        let fut = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            layer
                .requests
                .get_or_create(&RequestLabels {
                    code,
                    method,
                    host: layer.host.to_string(),
                })
                .inc();
            res
        })
    }
}
