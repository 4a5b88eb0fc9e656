//! The git servers: smart HTTP and HTTPS (lighttpd + git-http-backend, basic auth) and SSH (openssh, git-shell),
//! all serving one directory of bare repositories.

use std::path::PathBuf;
use std::process::Command;

use crate::Infra;

/// The git servers and the credentials, keys and CA to reach them.
#[derive(Clone, Debug)]
pub struct GitServer {
    /// `http://127.0.0.1:<port>/git` (no credentials in it).
    pub http_base: String,
    /// `https://127.0.0.1:<port>/git`.
    pub https_base: String,
    /// `ssh://git@127.0.0.1:<port>/<repos dir>`.
    pub ssh_base: String,
    /// Basic-auth user for HTTP(S).
    pub username: String,
    /// Basic-auth password for HTTP(S).
    pub password: String,
    /// The CA of the HTTPS server.
    pub ca_file: PathBuf,
    /// The ed25519 private key (OpenSSH format, no passphrase) authorised for the `git` user.
    pub ssh_key_file: PathBuf,
    /// A known_hosts file with the server's host key.
    pub known_hosts_file: PathBuf,
    /// The directory of bare repositories the servers export.
    pub repos_dir: PathBuf,
}

impl GitServer {
    pub(crate) fn from_infra(infra: &Infra) -> GitServer {
        GitServer {
            http_base: infra.var("GIT_HTTP_URL").to_string(),
            https_base: infra.var("GIT_HTTPS_URL").to_string(),
            ssh_base: infra.var("GIT_SSH_URL").to_string(),
            username: infra.var("GIT_USERNAME").to_string(),
            password: infra.var("GIT_PASSWORD").to_string(),
            ca_file: infra.path("GIT_CA_FILE"),
            ssh_key_file: infra.path("GIT_SSH_KEY_FILE"),
            known_hosts_file: infra.path("GIT_SSH_KNOWN_HOSTS"),
            repos_dir: infra.path("GIT_REPOS_DIR"),
        }
    }

    /// Creates an empty bare repository `<name>.git` (default branch `main`, push over HTTP enabled), owned by
    /// the `git` user the servers run as. Returns its path on disk.
    pub fn create_repo(&self, name: &str) -> PathBuf {
        let path = self.repos_dir.join(format!("{name}.git"));
        run(Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path));
        run(Command::new("git")
            .arg("-C")
            .arg(&path)
            .args(["config", "http.receivepack", "true"]));
        run(Command::new("chown").args(["-R", "git:git"]).arg(&path));
        path
    }

    /// `http://127.0.0.1:<port>/git/<name>.git`.
    pub fn http_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.http_base)
    }

    /// `https://127.0.0.1:<port>/git/<name>.git`.
    pub fn https_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.https_base)
    }

    /// `ssh://git@127.0.0.1:<port>/<repos dir>/<name>.git`.
    pub fn ssh_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.ssh_base)
    }

    /// The server's host key from known_hosts: (key type, raw key bytes).
    pub fn host_key(&self) -> (String, Vec<u8>) {
        use base64::Engine;
        let text = std::fs::read_to_string(&self.known_hosts_file).expect("read known_hosts");
        let mut fields = text.split_whitespace().skip(1);
        let kind = fields.next().expect("known_hosts key type").to_string();
        let key = base64::engine::general_purpose::STANDARD
            .decode(fields.next().expect("known_hosts key"))
            .expect("known_hosts key is base64");
        (kind, key)
    }
}

fn run(cmd: &mut Command) {
    crate::succeed(cmd);
}
