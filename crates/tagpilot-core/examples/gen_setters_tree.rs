//! Writes the synthetic repository of the setters benchmark: 10,000 YAML files in 100 directories, 10% of
//! them with image policy markers, and 1 MiB of block scalars (ConfigMaps with large `|` blocks) among them.
//!
//!   gen_setters_tree DIR [FILES]

use std::fmt::Write as _;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: gen_setters_tree DIR [FILES]"));
    let files: usize = args
        .next()
        .map_or(10_000, |n| n.parse().expect("FILES is a number"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut block_bytes = 0usize;
    for i in 0..files {
        let sub = dir.join(format!("apps/team-{:02}/app-{:03}", i % 100, i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        let marked = i % 10 == 0;
        let mut text = String::with_capacity(2048);
        writeln!(text, "---\n# app {i}: generated for the setters benchmark").unwrap();
        writeln!(text, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{:02}", i % 100).unwrap();
        text.push_str("  labels:\n    app.kubernetes.io/part-of: benchmark\n    tier: backend\n");
        text.push_str("spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: benchmark\n  template:\n");
        text.push_str(
            "    metadata:\n      labels:\n        app: benchmark\n    spec:\n      containers:\n",
        );
        for c in 0..3 {
            let marker = if marked && c == 0 {
                " # {\"$imagepolicy\": \"flux-system:podinfo\"}"
            } else {
                ""
            };
            writeln!(
                text,
                "        - name: c{c}\n          image: ghcr.io/acme/app-{i}-{c}:1.{c}.0{marker}"
            )
            .unwrap();
            text.push_str(
                "          ports:\n            - containerPort: 8080\n              name: http\n",
            );
            text.push_str("          resources:\n            requests: {cpu: 10m, memory: 32Mi}\n");
            text.push_str(
                "          env:\n            - name: LOG_LEVEL\n              value: info\n",
            );
        }
        if marked {
            writeln!(
                text,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}-tags\ndata:"
            )
            .unwrap();
            text.push_str("  tag: 5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n");
        }
        // 1 MiB of block scalars in 32 files of 32 KiB, half of them marked.
        if i % 312 == 0 && block_bytes < 1 << 20 {
            text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  script: |\n");
            let line = "    echo 'a long generated line of a shell script kept in a block scalar' # not a marker\n";
            let start = text.len();
            while text.len() - start < 32 * 1024 {
                text.push_str(line);
            }
            block_bytes += text.len() - start;
        }
        std::fs::write(sub.join("deployment.yaml"), text).unwrap();
    }
    eprintln!(
        "{files} files, {} marked, {block_bytes} bytes of block scalars",
        files.div_ceil(10)
    );
}
