//! The three registry flavours and a fast pusher of small OCI images (no Docker engine needed).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::Infra;

/// Which of the three registries: plain HTTP, TLS + htpasswd basic auth, or TLS + bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Plain HTTP, anonymous.
    Plain,
    /// HTTPS (test CA) with basic auth.
    Basic,
    /// HTTPS (test CA) with the bearer-token flow against the token server.
    Token,
    /// HTTPS (test CA) that requires a client certificate (mTLS); not in [`Flavour::ALL`].
    Mtls,
}

impl Flavour {
    /// All three flavours.
    pub const ALL: [Flavour; 3] = [Flavour::Plain, Flavour::Basic, Flavour::Token];

    pub(crate) fn env_key(self) -> &'static str {
        match self {
            Flavour::Plain => "REGISTRY_PLAIN",
            Flavour::Basic => "REGISTRY_BASIC",
            Flavour::Token => "REGISTRY_TOKEN",
            Flavour::Mtls => "REGISTRY_MTLS",
        }
    }
}

/// One test registry: its address, credentials and CA, and a client that trusts that CA.
#[derive(Clone, Debug)]
pub struct Registry {
    /// The flavour.
    pub flavour: Flavour,
    /// `127.0.0.1:<port>`, as it appears in image references.
    pub host: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// User name (basic and token flavours).
    pub username: String,
    /// Password (basic and token flavours).
    pub password: String,
    /// The CA that signed the TLS certificate (TLS flavours).
    pub ca_file: Option<PathBuf>,
    /// The client certificate and key (the mTLS flavour).
    pub client_identity: Option<(PathBuf, PathBuf)>,
    client: reqwest::Client,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl Registry {
    pub(crate) fn from_infra(infra: &Infra, flavour: Flavour) -> Registry {
        let tls = flavour != Flavour::Plain;
        let ca_file = tls.then(|| infra.path("REGISTRY_CA_FILE"));
        let mut builder = reqwest::Client::builder().pool_max_idle_per_host(16);
        if let Some(ca) = &ca_file {
            let pem = std::fs::read(ca).expect("read the registry CA");
            builder = builder.tls_certs_only([
                reqwest::Certificate::from_pem(&pem).expect("parse the registry CA")
            ]);
        }
        let client_identity = (flavour == Flavour::Mtls).then(|| {
            (
                infra.path("REGISTRY_CLIENT_CERT_FILE"),
                infra.path("REGISTRY_CLIENT_KEY_FILE"),
            )
        });
        if let Some((cert, key)) = &client_identity {
            let mut pem = std::fs::read(cert).expect("read the client certificate");
            pem.extend(std::fs::read(key).expect("read the client key"));
            builder = builder
                .identity(reqwest::Identity::from_pem(&pem).expect("parse the client identity"));
        }
        Registry {
            flavour,
            host: infra.var(flavour.env_key()).to_string(),
            scheme: if tls { "https" } else { "http" },
            username: infra.var("REGISTRY_USERNAME").to_string(),
            password: infra.var("REGISTRY_PASSWORD").to_string(),
            ca_file,
            client_identity,
            client: builder.build().expect("build a reqwest client"),
            tokens: Arc::default(),
        }
    }

    /// `https://127.0.0.1:<port>` (or `http://`).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The image reference of `repo` on this registry: `127.0.0.1:<port>/<repo>`.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    /// A reqwest client that trusts this registry's CA.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether the registry wants credentials.
    pub fn needs_auth(&self) -> bool {
        matches!(self.flavour, Flavour::Basic | Flavour::Token)
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The `Authorization` header that grants pull and push on `repo`, if the flavour needs one.
    pub async fn authorization(&self, repo: &str) -> anyhow::Result<Option<String>> {
        match self.flavour {
            Flavour::Plain | Flavour::Mtls => Ok(None),
            Flavour::Basic => Ok(Some(self.basic())),
            Flavour::Token => {
                if let Some(t) = self.tokens.lock().unwrap().get(repo) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(repo).await?;
                self.tokens
                    .lock()
                    .unwrap()
                    .insert(repo.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Follows the registry's `WWW-Authenticate: Bearer` challenge to the token server.
    async fn fetch_token(&self, repo: &str) -> anyhow::Result<String> {
        let resp = self
            .client
            .get(format!("{}/v2/", self.base_url()))
            .send()
            .await?;
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .context("token registry sent no WWW-Authenticate challenge")?
            .to_string();
        let param = |name: &str| {
            let key = format!("{name}=\"");
            let start = challenge.find(&key)? + key.len();
            let end = challenge[start..].find('"')? + start;
            Some(challenge[start..end].to_string())
        };
        let realm = param("realm").context("challenge without realm")?;
        let service = param("service").unwrap_or_default();
        let scope = format!("repository:{repo}:pull,push");
        let resp = self
            .client
            .get(&realm)
            .query(&[("service", service.as_str()), ("scope", scope.as_str())])
            .header("authorization", self.basic())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("token server answered {}", resp.status());
        }
        let body: serde_json::Value = resp.json().await?;
        body["token"]
            .as_str()
            .map(str::to_string)
            .context("token server reply without token")
    }

    async fn send(
        &self,
        repo: &str,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let req = match self.authorization(repo).await? {
            Some(auth) => req.header("authorization", auth),
            None => req,
        };
        let resp = req.send().await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            bail!("registry {} answered {status}: {body}", self.host);
        }
        Ok(resp)
    }

    /// Uploads a blob unless present; returns its descriptor fields (digest, size).
    async fn put_blob(&self, repo: &str, data: &[u8]) -> anyhow::Result<(String, usize)> {
        let digest = format!("sha256:{:x}", Sha256::digest(data));
        let base = self.base_url();
        let head = self.client.head(format!("{base}/v2/{repo}/blobs/{digest}"));
        let head = match self.authorization(repo).await? {
            Some(auth) => head.header("authorization", auth),
            None => head,
        };
        if head.send().await?.status().is_success() {
            return Ok((digest, data.len()));
        }
        let started = self
            .send(
                repo,
                self.client.post(format!("{base}/v2/{repo}/blobs/uploads/")),
            )
            .await?;
        let location = started
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("upload without Location")?;
        let mut url = if location.starts_with("http") {
            location.to_string()
        } else {
            format!("{base}{location}")
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        self.send(
            repo,
            self.client
                .put(url)
                .header("content-type", "application/octet-stream")
                .body(data.to_vec()),
        )
        .await?;
        Ok((digest, data.len()))
    }

    /// Pushes a manifest under `reference` (a tag or digest); returns the manifest digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<String> {
        let digest = format!("sha256:{:x}", Sha256::digest(&body));
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base_url());
        self.send(
            repo,
            self.client
                .put(url)
                .header("content-type", media_type)
                .body(body),
        )
        .await?;
        Ok(digest)
    }

    /// The shared layer and one image manifest per label (distinct config, so a distinct digest).
    async fn image_manifest(&self, repo: &str, label: &str, arch: &str) -> anyhow::Result<Vec<u8>> {
        self.image_manifest_created(repo, label, arch, None).await
    }

    /// [`Registry::image_manifest`] with the config's `created` set (RFC 3339) when given.
    async fn image_manifest_created(
        &self,
        repo: &str,
        label: &str,
        arch: &str,
        created: Option<&str>,
    ) -> anyhow::Result<Vec<u8>> {
        let (layer, diff_id) = tiny_layer(repo);
        let (layer_digest, layer_size) = self.put_blob(repo, &layer).await?;
        let mut config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Labels": {"tag": label}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        if let Some(c) = created {
            config["created"] = c.into();
        }
        let config = serde_json::to_vec(&config)?;
        let (config_digest, config_size) = self.put_blob(repo, &config).await?;
        Ok(serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer_size}],
        }))?)
    }

    /// Pushes one small image per tag, each with its own digest; up to 8 uploads in flight.
    /// Returns the manifest digest of each tag, in the order given.
    pub async fn push_tags<S: AsRef<str>>(
        &self,
        repo: &str,
        tags: &[S],
    ) -> anyhow::Result<Vec<String>> {
        let tags: Vec<String> = tags.iter().map(|t| t.as_ref().to_string()).collect();
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        let mut set = tokio::task::JoinSet::new();
        for (i, tag) in tags.into_iter().enumerate() {
            let (this, repo, sem) = (self.clone(), repo.to_string(), sem.clone());
            set.spawn(async move {
                let _permit = sem.acquire().await?;
                // docker-registry's filesystem storage can lose a blob that many tests upload at once (the
                // same content, so the same path): the manifest is then refused as naming an unknown blob.
                // The blobs are uploaded again, up to three times.
                let mut attempt = 0;
                let digest = loop {
                    attempt += 1;
                    let manifest = this.image_manifest(&repo, &tag, "amd64").await?;
                    let pushed = this
                        .put_manifest(
                            &repo,
                            &tag,
                            "application/vnd.oci.image.manifest.v1+json",
                            manifest,
                        )
                        .await
                        .with_context(|| format!("push {repo}:{tag}"));
                    match pushed {
                        Err(e) if attempt < 3 && format!("{e:#}").contains("BLOB_UNKNOWN") => {
                            continue;
                        }
                        other => break other?,
                    }
                };
                anyhow::Ok((i, digest))
            });
        }
        let mut digests = Vec::new();
        while let Some(r) = set.join_next().await {
            digests.push(r??);
        }
        digests.sort();
        Ok(digests.into_iter().map(|(_, d)| d).collect())
    }

    /// Pushes many tags that all point at one manifest: one request per tag, for large tag lists.
    pub async fn push_tags_same_manifest<S: AsRef<str>>(
        &self,
        repo: &str,
        tags: &[S],
    ) -> anyhow::Result<String> {
        let manifest = self.image_manifest(repo, "shared", "amd64").await?;
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        let mut set = tokio::task::JoinSet::new();
        for tag in tags {
            let (this, repo, sem, body, tag) = (
                self.clone(),
                repo.to_string(),
                sem.clone(),
                manifest.clone(),
                tag.as_ref().to_string(),
            );
            set.spawn(async move {
                let _permit = sem.acquire().await?;
                this.put_manifest(
                    &repo,
                    &tag,
                    "application/vnd.oci.image.manifest.v1+json",
                    body,
                )
                .await
            });
        }
        let mut digest = String::new();
        while let Some(r) = set.join_next().await {
            digest = r??;
        }
        Ok(digest)
    }

    /// Pushes a multi-arch OCI index (amd64 + arm64) under `tag`; returns the index digest.
    pub async fn push_index(&self, repo: &str, tag: &str) -> anyhow::Result<String> {
        self.push_index_of(repo, tag, &["amd64", "arm64"], None)
            .await
    }

    /// An OCI index of one image per architecture (each with `created` when given) under `tag`.
    async fn push_index_of(
        &self,
        repo: &str,
        tag: &str,
        architectures: &[&str],
        created: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut entries = Vec::new();
        for arch in architectures {
            let body = self
                .image_manifest_created(repo, &format!("{tag}-{arch}"), arch, created)
                .await?;
            let size = body.len();
            let digest = self
                .put_manifest(
                    repo,
                    &format!("sha256:{:x}", Sha256::digest(&body)),
                    "application/vnd.oci.image.manifest.v1+json",
                    body,
                )
                .await?;
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": size,
                "platform": {"architecture": arch, "os": "linux"},
            }));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }))?;
        self.put_manifest(repo, tag, "application/vnd.oci.image.index.v1+json", index)
            .await
    }

    /// Pushes one image under `tag` built at `created` (RFC 3339): a single manifest for one architecture, or
    /// an OCI index of one image per architecture (each with that `created`). Returns the tag's digest.
    pub async fn push_built(
        &self,
        repo: &str,
        tag: &str,
        created: &str,
        architectures: &[&str],
    ) -> anyhow::Result<String> {
        if let [arch] = architectures {
            let body = self
                .image_manifest_created(repo, tag, arch, Some(created))
                .await?;
            return self
                .put_manifest(
                    repo,
                    tag,
                    "application/vnd.oci.image.manifest.v1+json",
                    body,
                )
                .await;
        }
        self.push_index_of(repo, tag, architectures, Some(created))
            .await
    }

    /// Stores cosign signature layers for `repo@digest` as cosign does: the manifest tagged
    /// `sha256-<hex>.sig`, one layer per signature (payload blob, annotations), an empty config.
    pub async fn push_signatures(
        &self,
        repo: &str,
        digest: &str,
        layers: &[crate::cosign::SignatureLayer],
    ) -> anyhow::Result<String> {
        let config = b"{}".to_vec();
        let (config_digest, config_size) = self.put_blob(repo, &config).await?;
        let mut descriptors = Vec::new();
        for l in layers {
            let (d, size) = self.put_blob(repo, &l.payload).await?;
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": d, "size": size, "annotations": l.annotations,
            }));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": descriptors,
        }))?;
        let tag = format!("{}.sig", digest.replacen(':', "-", 1));
        self.put_manifest(
            repo,
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            manifest,
        )
        .await
    }

    /// Stores a cosign v3 bundle for `repo@digest` as cosign does on a registry without the referrers API: an
    /// artifact manifest (`artifactType` the bundle's media type, `subject` the image, one layer holding the
    /// bundle) and the referrers tag `sha256-<hex>`, an index listing it. Returns the artifact's digest.
    pub async fn push_bundle(
        &self,
        repo: &str,
        digest: &str,
        bundle: &str,
    ) -> anyhow::Result<String> {
        const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
        let (empty_digest, empty_size) = self.put_blob(repo, b"{}").await?;
        let (layer_digest, layer_size) = self.put_blob(repo, bundle.as_bytes()).await?;
        let image = self
            .client
            .get(format!("{}/v2/{repo}/manifests/{digest}", self.base_url()))
            .header(
                "accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            );
        let image = self.send(repo, image).await?;
        let image_type = image
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/vnd.oci.image.manifest.v1+json")
            .to_string();
        let image_size = image.bytes().await?.len();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": empty_size},
            "layers": [{"mediaType": BUNDLE, "digest": layer_digest, "size": layer_size}],
            "subject": {"mediaType": image_type, "digest": digest, "size": image_size},
            "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
        }))?;
        let size = manifest.len();
        let artifact = format!("sha256:{:x}", Sha256::digest(&manifest));
        self.put_manifest(
            repo,
            &artifact,
            "application/vnd.oci.image.manifest.v1+json",
            manifest,
        )
        .await?;
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": artifact,
                           "size": size, "artifactType": BUNDLE}],
        }))?;
        self.put_manifest(
            repo,
            &digest.replacen(':', "-", 1),
            "application/vnd.oci.image.index.v1+json",
            index,
        )
        .await?;
        Ok(artifact)
    }

    /// Lists the tags of `repo` with one plain `GET /v2/<repo>/tags/list` (the registry does not page).
    pub async fn list_tags(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let url = format!("{}/v2/{repo}/tags/list", self.base_url());
        let body: serde_json::Value = self.send(repo, self.client.get(url)).await?.json().await?;
        let mut tags: Vec<String> = body["tags"]
            .as_array()
            .context("tags/list without tags")?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        tags.sort();
        Ok(tags)
    }
}

/// A gzipped tar with one small file, and its diff ID: the layer every test image of a repository shares.
fn tiny_layer(repo: &str) -> (Vec<u8>, String) {
    // A gzip member holding a stored (uncompressed) deflate block: deterministic, no compressor needed.
    let content = format!("hello from {repo}\n");
    let mut tar = vec![0u8; 512];
    tar[..9].copy_from_slice(b"hello.txt");
    tar[100..107].copy_from_slice(b"0000644");
    tar[108..115].copy_from_slice(b"0000000");
    tar[116..123].copy_from_slice(b"0000000");
    tar[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
    tar[136..147].copy_from_slice(b"00000000000");
    tar[156] = b'0';
    tar[257..262].copy_from_slice(b"ustar");
    tar[148..156].copy_from_slice(b"        ");
    let sum: u32 = tar.iter().map(|&b| b as u32).sum();
    tar[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut body = content.into_bytes();
    body.resize(512, 0);
    tar.extend_from_slice(&body);
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.push(1); // final stored block
    let len = tar.len() as u16;
    gz.extend_from_slice(&len.to_le_bytes());
    gz.extend_from_slice(&(!len).to_le_bytes());
    gz.extend_from_slice(&tar);
    gz.extend_from_slice(&crc32(&tar).to_le_bytes());
    gz.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    (gz, format!("sha256:{:x}", Sha256::digest(&tar)))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
