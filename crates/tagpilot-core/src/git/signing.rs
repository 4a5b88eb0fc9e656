//! Commit signers: an OpenPGP key (`git.asc`) or an SSH key (`identity`), as `git.commit.signingKey` gives them.

use super::*;

/// A commit signer, as `git.commit.signingKey` gives it: an OpenPGP key (type `gpg`: `git.asc` and an optional
/// `passphrase`) or an SSH key (type `ssh`: `identity` and an optional `password`, verified with
/// `gpg.format=ssh`).
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

#[derive(Clone)]
enum SigningKey {
    Ssh(Box<ssh_key::PrivateKey>),
    OpenPgp(Box<pgp::composed::SignedSecretKey>, Option<String>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            SigningKey::Ssh(k) => write!(f, "Signer(ssh {})", k.algorithm()),
            SigningKey::OpenPgp(k, _) => {
                use pgp::types::KeyDetails as _;
                write!(f, "Signer(openpgp {:?})", k.primary_key.fingerprint())
            }
        }
    }
}

impl Signer {
    /// From a signing-key Secret as Flux reads it: `type` `gpg` (the default) takes `git.asc` and optional
    /// `passphrase`; `ssh` takes `identity` and optional `password`.
    pub fn from_secret_data(
        kind: &str,
        data: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<Signer, GitError> {
        let text = |key: &str| -> Result<Option<String>, GitError> {
            data.get(key)
                .map(|v| {
                    String::from_utf8(v.clone()).map_err(|_| {
                        GitError::InvalidAuth(format!(
                            "signing key secret: \"{key}\" is not UTF-8 text"
                        ))
                    })
                })
                .transpose()
        };
        let (key_field, pass_field) = match kind {
            "" | "gpg" => ("git.asc", "passphrase"),
            "ssh" => ("identity", "password"),
            other => {
                return Err(GitError::InvalidAuth(format!(
                    "signing key type {other:?}: expected gpg or ssh"
                )));
            }
        };
        let key = text(key_field)?.ok_or_else(|| {
            GitError::InvalidAuth(format!("the signing key secret has no \"{key_field}\" key"))
        })?;
        let pass = text(pass_field)?;
        if key_field == "identity" {
            Signer::ssh(&key, pass.as_deref())
        } else {
            Signer::openpgp(&key, pass.as_deref())
        }
    }

    /// An SSH signer from an OpenSSH private key (`identity`), decrypted with `password` when it has one.
    pub fn ssh(identity: &str, password: Option<&str>) -> Result<Signer, GitError> {
        let key = ssh_key::PrivateKey::from_openssh(identity).map_err(|e| {
            GitError::InvalidAuth(format!(
                "the signing key is not an OpenSSH private key: {e}"
            ))
        })?;
        let key = match (key.is_encrypted(), password) {
            (true, Some(p)) => key.decrypt(p).map_err(|_| {
                GitError::InvalidAuth("the signing key's password does not decrypt it".into())
            })?,
            (true, None) => {
                return Err(GitError::InvalidAuth(
                    "the signing key is encrypted and no password is given".into(),
                ));
            }
            (false, _) => key,
        };
        Ok(Signer {
            key: SigningKey::Ssh(Box::new(key)),
        })
    }

    /// An OpenPGP signer from an ASCII-armored private key (`git.asc`), unlocked with `passphrase` when it
    /// is protected. The primary key signs. The key is tried once here, so that a wrong passphrase is
    /// reported before anything is committed.
    pub fn openpgp(armored: &str, passphrase: Option<&str>) -> Result<Signer, GitError> {
        use pgp::composed::Deserializable as _;
        let (key, _) = pgp::composed::SignedSecretKey::from_string(armored).map_err(|e| {
            GitError::InvalidAuth(format!(
                "the signing key is not an armored OpenPGP private key: {e}"
            ))
        })?;
        let signer = Signer {
            key: SigningKey::OpenPgp(Box::new(key), passphrase.map(str::to_string)),
        };
        signer.sign(b"").map_err(|_| {
            GitError::InvalidAuth(match passphrase {
                Some(_) => "the signing key's passphrase does not unlock it".into(),
                None => "the signing key is protected and no passphrase is given".into(),
            })
        })?;
        Ok(signer)
    }

    /// The armored signature of a commit buffer, as git writes it in the `gpgsig` header.
    pub(super) fn sign(&self, content: &[u8]) -> Result<String, GitError> {
        match &self.key {
            SigningKey::Ssh(key) => {
                let sig = key
                    .sign("git", ssh_key::HashAlg::Sha512, content)
                    .map_err(|e| {
                        GitError::InvalidAuth(format!("cannot sign with the signing key: {e}"))
                    })?;
                sig.to_pem(ssh_key::LineEnding::LF)
                    .map_err(|e| GitError::InvalidAuth(format!("cannot encode the signature: {e}")))
            }
            SigningKey::OpenPgp(key, passphrase) => {
                let password = match passphrase {
                    Some(p) => pgp::types::Password::from(p.as_str()),
                    None => pgp::types::Password::empty(),
                };
                let sig = pgp::composed::DetachedSignature::sign_binary_data(
                    rand::thread_rng(),
                    &key.primary_key,
                    &password,
                    pgp::crypto::hash::HashAlgorithm::Sha256,
                    content,
                )
                .map_err(|e| {
                    GitError::InvalidAuth(format!("cannot sign with the signing key: {e}"))
                })?;
                sig.to_armored_string(pgp::composed::ArmorOptions::default())
                    .map_err(|e| GitError::InvalidAuth(format!("cannot encode the signature: {e}")))
            }
        }
    }
}
