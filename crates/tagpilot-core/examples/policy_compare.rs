//! The Rust side of `make bench-compare`: writes the tag files, and times one policy on one file.
//!
//!   policy_compare gen DIR                         writes DIR/tags-{1000,10000,100000}.txt
//!   policy_compare run FILE KIND ARG [PATTERN EXTRACT]
//!
//! `run` prints `median_ns<TAB>selected tag`, the median of 15 samples of enough iterations to last ~40 ms.
//! The Go harness (hack/go-harness/policytiming) takes the same arguments and prints the same line.

#[path = "../benches/support/tagmix.rs"]
mod tagmix;

use std::hint::black_box;
use std::time::Instant;

use tagpilot_core::policy::{Order, Policy, Selector};
use tagpilot_core::semver::Range;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => {
            let dir = std::path::Path::new(&args[1]);
            std::fs::create_dir_all(dir).unwrap();
            for n in [1_000, 10_000, 100_000] {
                let text = tagmix::tag_mix(n).join("\n") + "\n";
                std::fs::write(dir.join(format!("tags-{n}.txt")), text).unwrap();
            }
        }
        Some("policies") => {
            for (name, kind, arg, pattern, extract) in tagmix::POLICIES {
                println!("{name}\t{kind}\t{arg}\t{pattern}\t{extract}");
            }
        }
        Some("run") => {
            let tags: Vec<String> = std::fs::read_to_string(&args[1])
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            let selector = match args[2].as_str() {
                "semver" => Selector::SemVer(Range::parse(&args[3]).unwrap()),
                "alphabetical" => Selector::Alphabetical(Order::parse(&args[3]).unwrap()),
                _ => Selector::Numerical(Order::parse(&args[3]).unwrap()),
            };
            let mut policy = Policy::new(selector);
            if let Some(pattern) = args.get(4).filter(|p| !p.is_empty()) {
                policy = policy
                    .with_filter(pattern, args.get(5).map(String::as_str))
                    .unwrap();
            }
            let selected = policy.select(&tags).unwrap().to_string();
            // Calibrate: iterations per sample so that one sample lasts about 40 ms.
            let start = Instant::now();
            let mut iters = 0u64;
            while start.elapsed().as_millis() < 40 {
                black_box(policy.select(black_box(&tags)).unwrap());
                iters += 1;
            }
            let mut samples: Vec<f64> = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        black_box(policy.select(black_box(&tags)).unwrap());
                    }
                    t.elapsed().as_nanos() as f64 / iters as f64
                })
                .collect();
            samples.sort_by(f64::total_cmp);
            println!("{:.0}\t{selected}", samples[samples.len() / 2]);
        }
        _ => {
            eprintln!(
                "usage: policy_compare gen DIR | policies | run FILE KIND ARG [PATTERN EXTRACT]"
            );
            std::process::exit(2);
        }
    }
}
