//! Test support for tagpilot: the real servers started by `hack/testinfra/up.sh` (`make testinfra-up`).
//!
//! `up.sh` writes one env file (`KEY=value` lines) with every address, credential, CA path and kubeconfig path;
//! [`Infra::get`] reads it once per test binary. Each accessor checks that its server answers and otherwise
//! panics with the command that starts it: tests never skip silently.
//!
//! The env file is found through `TAGPILOT_TESTINFRA_ENV`, else at
//! `/tmp/tagpilot-testinfra-$TAGPILOT_PORT_BASE/testinfra.env` (port base 17000 by default), as `up.sh` writes it.

pub mod bench;
mod controller;
pub mod cosign;
mod fault_proxy;
pub mod forge;
mod git;
mod registry;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use controller::{ControllerProcess, binary_path};
pub use fault_proxy::{Fault, FaultProxy, Paging};
pub use git::GitServer;
pub use registry::{Flavour, Registry};

/// The test servers described by the env file.
#[derive(Debug)]
pub struct Infra {
    env_file: PathBuf,
    vars: BTreeMap<String, String>,
}

/// Where the env file is expected when `TAGPILOT_TESTINFRA_ENV` is not set.
pub fn default_env_file() -> PathBuf {
    let base = std::env::var("TAGPILOT_PORT_BASE").unwrap_or_else(|_| "17000".into());
    PathBuf::from(format!("/tmp/tagpilot-testinfra-{base}/testinfra.env"))
}

const HOW_TO_START: &str =
    "start the test servers with `make testinfra-up` (or hack/testinfra/up.sh)";

impl Infra {
    /// The servers of this test run; panics with instructions when the env file is missing.
    pub fn get() -> &'static Infra {
        static INFRA: OnceLock<Infra> = OnceLock::new();
        INFRA.get_or_init(|| {
            let env_file = std::env::var_os("TAGPILOT_TESTINFRA_ENV")
                .map(PathBuf::from)
                .unwrap_or_else(default_env_file);
            match Infra::load(&env_file) {
                Ok(infra) => infra,
                Err(e) => panic!("test servers are not set up ({e}): {HOW_TO_START}"),
            }
        })
    }

    /// Reads an env file written by `up.sh`.
    pub fn load(env_file: &Path) -> anyhow::Result<Infra> {
        let text = std::fs::read_to_string(env_file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", env_file.display()))?;
        let vars = parse_env(&text);
        Ok(Infra {
            env_file: env_file.to_path_buf(),
            vars,
        })
    }

    /// The value of `key` in the env file; panics naming the key and the file when absent.
    pub fn var(&self, key: &str) -> &str {
        match self.vars.get(key) {
            Some(v) => v,
            None => panic!(
                "{} has no {key}: the servers were started by an older up.sh; {HOW_TO_START}",
                self.env_file.display()
            ),
        }
    }

    /// A path from the env file.
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.var(key))
    }

    /// The directory holding `up.sh`, `down.sh` and the other test-server scripts.
    pub fn scripts_dir(&self) -> PathBuf {
        self.path("TAGPILOT_TESTINFRA_SCRIPTS")
    }

    /// The kubeconfig of the test API server (admin, `system:masters`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.path("KUBECONFIG")
    }

    /// A kube client for the test API server, as admin.
    pub async fn kube_client(&self) -> kube::Client {
        self.require_listening("kube-apiserver", "KUBE_API_URL");
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig_path())
            .expect("read the test kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("load the test kubeconfig");
        kube::Client::try_from(config).expect("build a kube client")
    }

    /// A port for an API server without the CRDs, for tests of what users see then: `up.sh apiserver bare
    /// PORT`.
    pub fn bare_apiserver_port(&self) -> u16 {
        self.var("KUBE_BARE_API_PORT")
            .parse()
            .expect("KUBE_BARE_API_PORT is a port")
    }

    /// Starts (or finds running) the extra API server `name` on `port` over the shared etcd (`up.sh apiserver
    /// NAME PORT`, its own key prefix); returns its kubeconfig.
    pub fn start_apiserver(&self, name: &str, port: u16) -> PathBuf {
        succeed(
            std::process::Command::new("bash")
                .arg(self.scripts_dir().join("up.sh"))
                .args(["apiserver", name, &port.to_string()]),
        );
        self.path("TAGPILOT_TESTINFRA")
            .join(format!("k8s-{name}"))
            .join("kubeconfig")
    }

    /// A port from the env file (`KUBE_FLUX_API_PORT`, `KUBE_HELM_API_PORT`, `PROMETHEUS_PORT`): one server per
    /// test that needs its own.
    pub fn port(&self, key: &str) -> u16 {
        self.var(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is a port"))
    }

    /// A port for a second API server that a test starts (and kills) itself: `up.sh apiserver NAME PORT`.
    pub fn spare_apiserver_port(&self) -> u16 {
        self.var("KUBE_SPARE_API_PORT")
            .parse()
            .expect("KUBE_SPARE_API_PORT is a port")
    }

    /// One registry flavour: plain HTTP, TLS + basic auth, or TLS + bearer token.
    pub fn registry(&self, flavour: Flavour) -> Registry {
        let key = flavour.env_key();
        self.require_listening(&format!("{flavour:?} registry"), key);
        if flavour == Flavour::Token {
            self.require_listening("registry token server", "REGISTRY_TOKEN_REALM");
        }
        Registry::from_infra(self, flavour)
    }

    /// The git servers (smart HTTP, HTTPS and SSH over one repository directory).
    pub fn git(&self) -> GitServer {
        self.require_listening("git HTTP server", "GIT_HTTP_URL");
        self.require_listening("git HTTPS server", "GIT_HTTPS_URL");
        self.require_listening("git SSH server", "GIT_SSH_URL");
        GitServer::from_infra(self)
    }

    /// Panics with instructions unless the server at the address in `key` accepts TCP connections.
    fn require_listening(&self, what: &str, key: &str) {
        let addr = socket_addr_of(self.var(key))
            .unwrap_or_else(|| panic!("{key}={} holds no host:port", self.var(key)));
        if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
            panic!("the {what} at {addr} is not running: {HOW_TO_START}");
        }
    }
}

/// Parses `KEY=value` lines; blank lines and `#` comments are skipped, values are taken verbatim.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The `127.0.0.1:port` inside a URL or a bare `host:port`.
fn socket_addr_of(value: &str) -> Option<SocketAddr> {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next()?;
    hostport.parse().ok()
}

/// Runs `cmd` and returns its output, failing the test (with the command and its stderr) when it does not
/// succeed.
#[track_caller]
pub fn succeed(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A name unique within this test run, for repositories, namespaces and objects: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_lines() {
        let vars = parse_env("# c\nA=1\n\nB=x=y\n  C = z \n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "x=y");
        assert_eq!(vars["C"], "z");
    }

    #[test]
    fn finds_socket_addresses() {
        let want: SocketAddr = "127.0.0.1:17020".parse().unwrap();
        assert_eq!(socket_addr_of("http://127.0.0.1:17020/git"), Some(want));
        assert_eq!(
            socket_addr_of("ssh://git@127.0.0.1:17020/tmp/x"),
            Some(want)
        );
        assert_eq!(socket_addr_of("127.0.0.1:17020"), Some(want));
        assert_eq!(socket_addr_of("/tmp/x"), None);
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("a"), unique_name("a"));
    }
}
