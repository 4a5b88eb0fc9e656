//! `tagpilot policy select` as a user runs it: tags on stdin or in a file, exit codes 0, 1 and 2.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn select(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(["policy", "select"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading stdin (an invalid policy): a broken pipe is expected then.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).unwrap()
}

const PODINFO: &str = "5.0.0\n5.0.1\n5.0.2\n5.0.3\n5.1.0\n6.0.0\nlatest\n";

#[test]
fn selects_from_stdin() {
    let o = select(&["--semver", "5.0.x"], PODINFO);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "5.0.3\n");
}

#[test]
fn selects_from_a_file_with_crlf_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tags.txt");
    std::fs::write(&file, "ver1\r\n\r\nver3\r\nver2\r\nrel9\r\n").unwrap();
    let o = select(
        &[
            "--alphabetical",
            "asc",
            "--filter-pattern",
            r"ver(\d+)",
            "--filter-extract",
            "$1",
            "--tags-file",
        ]
        .iter()
        .copied()
        .chain([file.to_str().unwrap()])
        .collect::<Vec<_>>(),
        "",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ver3\n");
}

#[test]
fn numerical_with_extract() {
    let tags =
        "main-0a1b2c3-1700000300\nmain-ffeedd0-1700000100\nmain-1234567-1700000200\nlatest\n";
    let o = select(
        &[
            "--numerical",
            "asc",
            "--filter-pattern",
            r"^main-[0-9a-f]+-(?P<ts>\d+)$",
            "--filter-extract",
            "$ts",
        ],
        tags,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "main-0a1b2c3-1700000300\n");
}

#[test]
fn exit_1_when_no_tag_qualifies() {
    let o = select(&["--semver", "7.x"], PODINFO);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("unable to determine latest version from provided list"),
        "{}",
        stderr(&o)
    );

    let o = select(&["--numerical", "asc"], PODINFO);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("failed to parse invalid numeric value 'latest'"),
        "{}",
        stderr(&o)
    );

    let o = select(&["--semver", "*"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot be empty"), "{}", stderr(&o));
}

#[test]
fn exit_2_for_an_invalid_policy() {
    let o = select(&["--semver", ">=1.0 <2.x.y"], PODINFO);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"invalid semver range ">=1.0 <2.x.y""#),
        "{}",
        stderr(&o)
    );

    let o = select(
        &["--alphabetical", "asc", "--filter-pattern", "(["],
        PODINFO,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"invalid regular expression "([""#),
        "{}",
        stderr(&o)
    );

    let o = select(&["--semver", "1.x", "--alphabetical", "asc"], PODINFO);
    assert_eq!(o.status.code(), Some(2), "two policies are refused");

    let o = select(&["--alphabetical", "up"], PODINFO);
    assert_eq!(o.status.code(), Some(2));
}
