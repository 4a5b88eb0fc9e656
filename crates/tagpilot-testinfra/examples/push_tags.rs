//! Pushes tags to a test registry (from the testinfra env file), for benchmarks and demos.
//!
//!   push_tags plain|basic|token|mtls REPO COUNT [--distinct]     tags 1.<i/100>.<i%100>, i < COUNT
//!   push_tags plain|basic|token|mtls REPO TAG...                 the tags given

use tagpilot_testinfra::{Flavour, Infra};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flavour = match args.first().map(String::as_str) {
        Some("plain") => Flavour::Plain,
        Some("basic") => Flavour::Basic,
        Some("token") => Flavour::Token,
        Some("mtls") => Flavour::Mtls,
        _ => anyhow::bail!(
            "usage: push_tags plain|basic|token|mtls REPO (COUNT [--distinct] | TAG...)"
        ),
    };
    let repo = args.get(1).ok_or_else(|| anyhow::anyhow!("no REPO"))?;
    let reg = Infra::get().registry(flavour);
    let rest = &args[2..];
    let (tags, distinct): (Vec<String>, bool) =
        match rest.first().and_then(|c| c.parse::<usize>().ok()) {
            Some(count) => (
                (0..count)
                    .map(|i| format!("1.{}.{}", i / 100, i % 100))
                    .collect(),
                rest.iter().any(|a| a == "--distinct"),
            ),
            None => (rest.to_vec(), true),
        };
    if distinct {
        reg.push_tags(repo, &tags).await?;
    } else {
        reg.push_tags_same_manifest(repo, &tags).await?;
    }
    println!("pushed {} tags to {}", tags.len(), reg.image(repo));
    Ok(())
}
