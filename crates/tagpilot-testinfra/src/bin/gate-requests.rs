//! Registry requests of the ImagePolicy gates (`make bench-gates`): a 1,000-tag repository on the project's
//! registry (distinct images, creation times one minute apart, the newest a two-platform index signed with a
//! key), read through a counting loopback proxy by the same core functions the reflector and `tagpilot run`
//! call. For each gate: the requests of the first evaluation (nothing known) and of each later rescan (the tag
//! list read again, image facts and good signatures known by digest), besides the scan's own tag listing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tagpilot_core::api::{
    ImagePolicyChoice, ImagePolicySpec, ImageVerification, LocalObjectReference, NewestBuildPolicy,
    SemVerPolicy,
};
use tagpilot_core::cosign::Verifier;
use tagpilot_core::gates::{GateCache, GateContext, choose};
use tagpilot_core::registry::{
    Credentials, DEFAULT_EXCLUSIONS, Exclusions, ImageName, RegistryClient, ScanRequest, Transport,
};
use tagpilot_core::tagstore::StoredTags;
use tagpilot_testinfra::cosign::{self as signer, KeyPair};
use tagpilot_testinfra::{FaultProxy, Flavour, Infra, Paging};

const TAGS: usize = 1000;

fn tag(i: usize) -> String {
    format!("1.{}.{}", i / 100, i % 100)
}

fn rfc3339(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .unwrap()
        .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let infra = Infra::get();
    let reg = infra.registry(Flavour::Plain);
    let repo = format!("gate-requests-{}/app", std::process::id());
    let key = KeyPair::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // Tag i built (TAGS - i) minutes before 100 hours ago: the newest is old enough for minimumAge 72h.
    let base = now - 100 * 3600;
    let t0 = Instant::now();
    let mut top = String::new();
    let other_key = KeyPair::generate();
    for i in 0..TAGS {
        let created = rfc3339(base - (TAGS - i) as u64 * 60);
        let arches: &[&str] = if i == TAGS - 1 {
            &["amd64", "arm64"]
        } else {
            &["amd64"]
        };
        top = reg.push_built(&repo, &tag(i), &created, arches).await?;
        if i == TAGS - 5 {
            // Signed with another key: a policy trusting that key turns the four newer tags down.
            let image_name = reg.image(&repo);
            reg.push_signatures(
                &repo,
                &top,
                &[other_key.layer(&signer::payload(&image_name, &top))],
            )
            .await?;
        }
    }
    let image_name = reg.image(&repo);
    reg.push_signatures(
        &repo,
        &top,
        &[key.layer(&signer::payload(&image_name, &top))],
    )
    .await?;
    eprintln!(
        "pushed {TAGS} images in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let proxy = FaultProxy::start(reg.image("").trim_end_matches('/'), Paging::Passthrough).await;
    let image = ImageName::parse(&format!("{}/{repo}", proxy.host()))?;
    let client = RegistryClient::default();
    let (credentials, transport) = (Credentials::Anonymous, Transport::default());
    let before = proxy.requests().len();
    let scan = client
        .list_tags(&ScanRequest {
            image: &image,
            credentials: &credentials,
            transport: &transport,
            exclusions: &Exclusions::new(DEFAULT_EXCLUSIONS)?,
            page_size: 1000,
            timeout: Duration::from_secs(120),
            max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
        })
        .await?;
    let scan_requests = proxy.requests().len() - before;
    let stored = StoredTags::from_tags(&scan.tags);
    let keys = BTreeMap::from([("cosign.pub".to_string(), key.public_pem().into_bytes())]);
    let verifier = Verifier::with_keys("bench/keys", &keys)?;
    let other_keys =
        BTreeMap::from([("other.pub".to_string(), other_key.public_pem().into_bytes())]);
    let other_verifier = Verifier::with_keys("bench/other", &other_keys)?;

    let semver = ImagePolicyChoice {
        semver: Some(SemVerPolicy {
            range: ">=1.0.0".into(),
        }),
        ..Default::default()
    };
    let newest = ImagePolicyChoice {
        newest_build: Some(NewestBuildPolicy {}),
        ..Default::default()
    };
    let verify = Some(ImageVerification {
        secret_ref: Some(LocalObjectReference {
            name: "keys".into(),
        }),
        ..Default::default()
    });
    let scenarios: Vec<(&str, ImagePolicySpec)> = vec![
        ("no gate (semver)", spec(&semver, None, None, None)),
        (
            "verify (cosign key)",
            spec(&semver, verify.clone(), None, None),
        ),
        (
            "minimumAge 72h (created)",
            spec(&semver, None, Some("72h"), None),
        ),
        (
            "platforms linux/arm64",
            spec(&semver, None, None, Some("linux/arm64")),
        ),
        (
            "verify + minimumAge + platforms",
            spec(&semver, verify.clone(), Some("72h"), Some("linux/arm64")),
        ),
        (
            "verify, the 4 newest tags turned down",
            spec(&semver, verify.clone(), None, None),
        ),
        ("newestBuild", spec(&newest, None, None, None)),
        (
            "newestBuild + verify",
            spec(&newest, verify.clone(), None, None),
        ),
    ];
    println!(
        "repository: {TAGS} tags (distinct images), scan: {scan_requests} request(s) ({} tags listed)",
        scan.tags.len()
    );
    println!();
    println!("| gate | pick | first evaluation: requests | time | each rescan: requests | time |");
    println!("|---|---|---:|---:|---:|---:|");
    for (name, spec) in scenarios {
        let (policy, gates) = spec.checked()?;
        let cache = GateCache::default();
        let mut row = vec![];
        let mut pick = String::new();
        for scan_id in ["scan-1", "scan-2"] {
            let ctx = GateContext {
                registry: &client,
                image: &image,
                credentials: &credentials,
                transport: &transport,
                cache: &cache,
                scan: scan_id,
                verifier: gates.verify.as_ref().map(|_| {
                    if name.starts_with("verify, the 4") {
                        &other_verifier
                    } else {
                        &verifier
                    }
                }),
                now: jiff::Timestamp::now(),
            };
            let before = proxy.requests().len();
            let t = Instant::now();
            pick = if gates.any() {
                choose(&ctx, &policy, &gates, &stored).await?.tag
            } else {
                policy.select(&stored.to_vec())?.to_string()
            };
            let elapsed = t.elapsed();
            row.push((proxy.requests().len() - before, elapsed));
        }
        println!(
            "| {name} | {pick} | {} | {:.1} ms | {} | {:.1} ms |",
            row[0].0,
            row[0].1.as_secs_f64() * 1e3,
            row[1].0,
            row[1].1.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn spec(
    choice: &ImagePolicyChoice,
    verify: Option<ImageVerification>,
    age: Option<&str>,
    platform: Option<&str>,
) -> ImagePolicySpec {
    ImagePolicySpec {
        policy: choice.clone(),
        verify,
        minimum_age: age.map(str::to_string),
        platforms: platform.map(|p| vec![p.to_string()]),
        ..Default::default()
    }
}
