//! Criterion benchmarks of each policy over 1k, 10k and 100k tags of a realistic mix.

#[path = "support/tagmix.rs"]
mod tagmix;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tagpilot_core::policy::{Order, Policy, Selector};
use tagpilot_core::semver::Range;

fn policy(kind: &str, arg: &str, pattern: &str, extract: &str) -> Policy {
    let selector = match kind {
        "semver" => Selector::SemVer(Range::parse(arg).unwrap()),
        "alphabetical" => Selector::Alphabetical(Order::parse(arg).unwrap()),
        _ => Selector::Numerical(Order::parse(arg).unwrap()),
    };
    let p = Policy::new(selector);
    if pattern.is_empty() {
        p
    } else {
        p.with_filter(pattern, Some(extract)).unwrap()
    }
}

fn bench(c: &mut Criterion) {
    for &(name, kind, arg, pattern, extract) in tagmix::POLICIES {
        let mut group = c.benchmark_group(name);
        let p = policy(kind, arg, pattern, extract);
        for n in [1_000, 10_000, 100_000] {
            let tags = tagmix::tag_mix(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), &tags, |b, tags| {
                b.iter(|| black_box(p.select(black_box(tags)).unwrap().len()))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
