//! A realistic, deterministic tag mix for benchmarks: semver (with `v`, prereleases, build metadata),
//! `main-<sha>-<timestamp>` CI tags, CalVer, and stray tags (`latest`, `sha-…`, `pr-…`).
//! Returned unique and sorted byte-wise descending, as the tag store keeps them.

/// `n` distinct tags.
pub fn tag_mix(n: usize) -> Vec<String> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    while tags.len() < n {
        let r = next();
        let tag = match r % 100 {
            0..=39 => {
                let (maj, min, pat) = (next() % 20, next() % 30, next() % 50);
                let v = if next() % 10 < 3 { "v" } else { "" };
                let mut t = format!("{v}{maj}.{min}.{pat}");
                match next() % 20 {
                    0..=1 => t.push_str(&format!("-rc.{}", next() % 10)),
                    2 => t.push_str(&format!("-beta.{}", next() % 10)),
                    3 => t.push_str("-alpha"),
                    4 => t.push_str(&format!("+build.{}", next() % 1000)),
                    _ => {}
                }
                t
            }
            40..=69 => format!(
                "main-{:07x}-{}",
                next() & 0xfff_ffff,
                1_690_000_000 + next() % 50_000_000
            ),
            70..=89 => {
                let mut t = format!(
                    "{}.{:02}.{:02}",
                    2019 + next() % 8,
                    1 + next() % 12,
                    1 + next() % 28
                );
                if next() % 4 == 0 {
                    t.push_str(&format!("-{}", next() % 5));
                }
                t
            }
            _ => match next() % 4 {
                0 => "latest".to_string(),
                1 => format!("sha-{:012x}", next() & 0xffff_ffff_ffff),
                2 => format!("pr-{}", next() % 5000),
                _ => format!("{}.{}", next() % 10, next() % 10),
            },
        };
        if seen.insert(tag.clone()) {
            tags.push(tag);
        }
    }
    tags.sort_unstable_by(|a, b| b.cmp(a));
    tags
}

/// The benchmarked policies: (name, kind, argument, filter pattern, extract template).
pub const POLICIES: &[(&str, &str, &str, &str, &str)] = &[
    ("semver", "semver", ">=1.0.0 <20.0.0", "", ""),
    ("semver-prerelease", "semver", "^5.x-0", "", ""),
    ("alphabetical", "alphabetical", "asc", "", ""),
    (
        "numerical-extract",
        "numerical",
        "asc",
        r"^main-[0-9a-f]+-(?P<ts>[0-9]+)$",
        "$ts",
    ),
];
