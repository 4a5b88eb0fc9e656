//! A controller binary of the workspace run as a child process against a test API server.
//!
//! Children are spawned from one long-lived thread with `PR_SET_PDEATHSIG`, so a controller never outlives the
//! test binary, even when a test panics or the binary is killed. [`ControllerProcess::stop`] (and `Drop`)
//! sends SIGTERM and waits, so a graceful shutdown is exercised every time.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running controller.
#[derive(Debug)]
pub struct ControllerProcess {
    child: Option<Child>,
    log: PathBuf,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    pub health_addr: SocketAddr,
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("controller-spawner".into())
            .spawn(move || {
                // This thread lives as long as the test binary: children die with it (PDEATHSIG is per thread).
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("start the spawner thread");
        Mutex::new(tx)
    })
}

/// The path of a workspace binary next to the running test binary (`target/debug/<name>`).
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`; `make test` does)",
        path.display()
    );
    path
}

impl ControllerProcess {
    /// Starts `binary` with `args` (and environment `envs`) against the API server of `kubeconfig`, logging
    /// (JSON) to `log`. Metrics and health listen on free loopback ports, read back from the log line that
    /// announces them.
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<ControllerProcess> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(binary);
        cmd.args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--log-encoding",
            "json",
        ])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .expect("spawner lock")
            .send((cmd, tx))
            .expect("spawner thread alive");
        let child = rx.recv().expect("spawner answers")?;
        let mut p = ControllerProcess {
            child: Some(child),
            log: log.to_path_buf(),
            metrics_addr: "127.0.0.1:0".parse().expect("addr"),
            health_addr: "127.0.0.1:0".parse().expect("addr"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!(
                    "{} exited with {status} at start; log:\n{}",
                    binary.display(),
                    p.log_text()
                );
            }
            let text = p.log_text();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("serving metrics and health endpoints"))
            {
                let v: serde_json::Value = serde_json::from_str(line)?;
                p.metrics_addr = v["metrics"].as_str().unwrap_or_default().parse()?;
                p.health_addr = v["health"].as_str().unwrap_or_default().parse()?;
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} did not start within 30 s; log:\n{text}",
                    binary.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(p)
    }

    /// The process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the controller logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (polling every 100 ms, up to `timeout`) until the log contains `what`; returns whether it did.
    pub async fn wait_for_log(&self, what: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.log_text().contains(what) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A GET on the metrics or health server: `(status, body)`.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body))
    }

    /// SIGTERM, then up to 15 s for a graceful exit (then SIGKILL). Returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
