//! Scale measurement of image-reflector-controller (`make scale-reflector`): N ImageRepositories of M tags
//! each on the local registry, N ImagePolicies, on an API server of their own (`up.sh apiserver scale-PID
//! PORT`, over the shared etcd under a fresh key prefix), so that the API server's request counters hold only
//! this run's traffic and no object of an earlier run is reconciled.
//!
//! Reports: time from controller start until every policy is Ready with the right tag; the controller's RSS
//! (current and peak) and CPU over one steady-state scan interval; API requests per scan interval.
//!
//! The registry's repositories are made once: the first by pushing M tags over HTTP, the others as directories
//! whose `_manifests` and `_layers` are symbolic links to the first's (the registry serves them like pushed
//! ones; copies would cost 20 KiB of directories per tag, 20 GB for a million tags). They stay for later runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use tagpilot_testinfra::{ControllerProcess, Flavour, Infra};

struct Args {
    repos: usize,
    /// Distinct images the repositories name (repository i names image i % images).
    images: usize,
    tags: usize,
    interval_s: u64,
    concurrent: u16,
    binary: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        repos: 1000,
        images: 0,
        tags: 1000,
        interval_s: 120,
        concurrent: 4,
        binary: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/release/image-reflector-controller"
        )),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--repos" => a.repos = value()?.parse()?,
            "--tags" => a.tags = value()?.parse()?,
            "--distinct-images" => a.images = value()?.parse()?,
            "--interval-seconds" => a.interval_s = value()?.parse()?,
            "--concurrent" => a.concurrent = value()?.parse()?,
            "--binary" => a.binary = value()?.into(),
            other => bail!("unknown flag {other}"),
        }
    }
    if a.images == 0 || a.images > a.repos {
        a.images = a.repos;
    }
    Ok(a)
}

fn tag(i: usize) -> String {
    format!("1.{}.{}", i / 100, i % 100)
}

/// Makes `scale/rNNNN` for every repository (once).
async fn populate_registry(infra: &Infra, args: &Args) -> anyhow::Result<()> {
    let reg = infra.registry(Flavour::Plain);
    let root = infra
        .path("TAGPILOT_TESTINFRA")
        .join("registry/data-plain/docker/registry/v2/repositories/scale");
    let first = format!("r0000-{}", args.tags);
    if !root.join(&first).join("_manifests/tags").is_dir() {
        let tags: Vec<String> = (0..args.tags).map(tag).collect();
        let t = Instant::now();
        reg.push_tags_same_manifest(&format!("scale/{first}"), &tags)
            .await?;
        eprintln!(
            "pushed {} tags in {:.1} s",
            args.tags,
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let mut made = 0;
    for i in 1..args.repos {
        let name = root.join(format!("r{i:04}-{}", args.tags));
        if name.is_dir() {
            continue;
        }
        // The other repositories share the first one's tag and layer links through symbolic links: the
        // registry lists them as separate repositories, and the disk holds one tag tree (a copy of it costs
        // 20 KiB of directories per tag).
        std::fs::create_dir_all(&name)?;
        for part in ["_manifests", "_layers"] {
            std::os::unix::fs::symlink(root.join(&first).join(part), name.join(part))?;
        }
        made += 1;
    }
    if made > 0 {
        eprintln!(
            "linked {made} repositories in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let listed = reg
        .list_tags(&format!("scale/r{:04}-{}", args.repos - 1, args.tags))
        .await?;
    anyhow::ensure!(
        listed.len() == args.tags,
        "the registry lists {} tags",
        listed.len()
    );
    Ok(())
}

/// The controller's `tagpilot_registry_requests_total`.
fn registry_requests(controller: &ControllerProcess) -> anyhow::Result<f64> {
    let (_, text) = controller.http_get(controller.metrics_addr, "/metrics")?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("tagpilot_registry_requests_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

fn api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("image.toolkit.fluxcd.io", "v1", kind),
        plural,
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Sums `apiserver_request_total` (all resources, all verbs), and per `verb resource`.
async fn request_counts(client: &kube::Client) -> anyhow::Result<(f64, BTreeMap<String, f64>)> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let mut total = 0.0;
    let mut by = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = value.parse().unwrap_or(0.0);
        let get = |k: &str| {
            labels
                .split(&format!("{k}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        if get("resource").is_empty() {
            continue; // /metrics, /readyz and the like
        }
        total += v;
        *by.entry(format!("{} {}", get("verb"), get("resource")))
            .or_insert(0.0) += v;
    }
    Ok((total, by))
}

fn proc_stats(pid: u32) -> anyhow::Result<(u64, u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((kib("VmRSS:"), kib("VmHWM:"), ticks / hz))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    anyhow::ensure!(
        args.binary.is_file(),
        "{} is missing: cargo build --release -p image-reflector-controller",
        args.binary.display()
    );
    let infra = Infra::get();
    populate_registry(infra, &args).await?;

    // A port nothing listens on: the one after the spare API server's is the e2e tests' bare API server,
    // which answered in place of this run's (whose bind failed), with every earlier run's objects in it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // A fresh key prefix per run: objects of an earlier run would be reconciled too.
    let name = format!("scale-{}", std::process::id());
    let scripts = infra.scripts_dir();
    let out = std::process::Command::new("bash")
        .arg(scripts.join("up.sh"))
        .args(["apiserver", &name, &port.to_string()])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "up.sh apiserver: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = infra.path("TAGPILOT_TESTINFRA").join(format!("k8s-{name}"));
    let kubeconfig = dir.join("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let result = run(&args, infra, &client, &kubeconfig, &dir).await;
    if let Ok(pid) = std::fs::read_to_string(dir.join("apiserver.pid")) {
        // SAFETY: kill(2) on the PID up.sh recorded for this run's API server.
        unsafe { libc::kill(pid.trim().parse().unwrap_or(0), libc::SIGTERM) };
    }
    let _ = std::fs::remove_dir_all(dir.join(format!("data-{}", std::process::id())));
    result
}

async fn run(
    args: &Args,
    infra: &Infra,
    client: &kube::Client,
    kubeconfig: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    // CRDs, and a fresh namespace.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in tagpilot_core::api::crd::image_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply("scale").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ns = format!("scale-{}", std::process::id());
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    nss.patch(
        &ns,
        &PatchParams::apply("scale"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
    )
    .await?;
    let repos = api(client, &ns, "ImageRepository", "imagerepositories");
    let policies = api(client, &ns, "ImagePolicy", "imagepolicies");
    let host = infra.registry(Flavour::Plain).image("");
    let t = Instant::now();
    futures::stream::iter(0..args.repos)
        .map(|i| {
            let (repos, policies, host) = (repos.clone(), policies.clone(), host.clone());
            let name = format!("app-{i:04}");
            let image = format!("{host}scale/r{:04}-{}", i % args.images, args.tags);
            let interval = format!("{}s", args.interval_s);
            async move {
                let r = json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                    "metadata": {"name": name}, "spec": {"image": image, "interval": interval}});
                repos.patch(&name, &PatchParams::apply("scale"), &Patch::Apply(&r)).await?;
                let p = json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                    "metadata": {"name": name}, "spec": {"imageRepositoryRef": {"name": name},
                    "policy": {"semver": {"range": "1.x"}}}});
                policies.patch(&name, &PatchParams::apply("scale"), &Patch::Apply(&p)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!(
        "created {} repositories and policies in {:.1} s",
        args.repos,
        t.elapsed().as_secs_f64()
    );

    let want = tag(args.tags - 1);
    let storage = dir.join(format!("data-{}", std::process::id()));
    let started = Instant::now();
    let mut controller = ControllerProcess::start(
        &args.binary,
        kubeconfig,
        &[
            "--storage-path".into(),
            storage.display().to_string(),
            "--concurrent".into(),
            args.concurrent.to_string(),
            "--log-level".into(),
            "info".into(),
        ],
        &[],
        &dir.join("controller.log"),
    )?;
    let pid = controller.pid().context("controller pid")?;
    let (ready_after, mut peak_rss) = loop {
        let list = policies.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|p| p.data["status"]["latestRef"]["tag"] == want.as_str())
            .count();
        let (rss, _, _) = proc_stats(pid)?;
        if ready == args.repos {
            break (started.elapsed(), rss);
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {ready} of {} policies resolved after 10 min",
                args.repos
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (rss_ready, hwm_ready, cpu_ready) = proc_stats(pid)?;
    eprintln!(
        "all {} policies Ready with {want} after {:.1} s",
        args.repos,
        ready_after.as_secs_f64()
    );

    // Steady state: one full scan interval, measured after the first interval has passed.
    let settle = Duration::from_secs(args.interval_s).saturating_sub(started.elapsed());
    tokio::time::sleep(settle + Duration::from_secs(5)).await;
    let (req0, by0) = request_counts(client).await?;
    let registry0 = registry_requests(&controller)?;
    let (_, _, cpu0) = proc_stats(pid)?;
    let window = Duration::from_secs(args.interval_s);
    let t0 = Instant::now();
    let mut rss_samples = Vec::new();
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (rss, _, _) = proc_stats(pid)?;
        rss_samples.push(rss);
        peak_rss = peak_rss.max(rss);
    }
    let (req1, by1) = request_counts(client).await?;
    let registry1 = registry_requests(&controller)?;
    let (rss_end, hwm_end, cpu1) = proc_stats(pid)?;
    rss_samples.sort_unstable();
    let median_rss = rss_samples[rss_samples.len() / 2];
    let cpu_pct = (cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let stopped = controller.stop();

    println!("## image-reflector-controller at scale");
    println!(
        "repositories: {} x {} tags over {} distinct images; policies: {}; interval {} s; --concurrent {}",
        args.repos, args.tags, args.images, args.repos, args.interval_s, args.concurrent
    );
    println!(
        "all policies Ready after: {:.1} s (RSS then {} KiB, peak so far {} KiB, CPU {:.1} s)",
        ready_after.as_secs_f64(),
        rss_ready,
        hwm_ready,
        cpu_ready
    );
    println!(
        "steady state over one interval: RSS median {median_rss} KiB, end {rss_end} KiB, peak (VmHWM) {hwm_end} KiB; CPU {cpu_pct:.1} % of one core"
    );
    println!(
        "registry requests in one interval: {:.0}",
        registry1 - registry0
    );
    println!("API requests in one interval: {:.0}", req1 - req0);
    for (k, v1) in &by1 {
        let d = v1 - by0.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            println!("  {k}: {d:.0}");
        }
    }
    println!("graceful stop: {stopped}");
    Ok(())
}
