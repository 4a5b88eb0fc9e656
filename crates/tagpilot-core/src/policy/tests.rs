//! Flux's own test vectors (image-reflector-controller internal/policy, fluxcd/pkg version) and the
//! selection rules from the reference.

use super::*;

fn semver(range: &str, tags: &[&str]) -> Result<String, SelectError> {
    Policy::semver(range)
        .unwrap()
        .select(tags)
        .map(str::to_string)
}

fn alpha(order: Order, tags: &[&str]) -> String {
    Policy::new(Selector::Alphabetical(order))
        .select(tags)
        .unwrap()
        .to_string()
}

fn numeric(order: Order, tags: &[&str]) -> Result<String, SelectError> {
    Policy::new(Selector::Numerical(order))
        .select(tags)
        .map(str::to_string)
}

#[test]
fn flux_semver_vectors() {
    assert_eq!(
        semver(
            "1.0.x",
            &["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"]
        )
        .unwrap(),
        "1.0.1"
    );
    assert_eq!(
        semver("1.0.x", &["v1.2.3", "v1.0.0", "v0.1.0"]).unwrap(),
        "v1.0.0"
    );
    assert_eq!(
        semver("1.0.x", &["b1.2.3", "b1.0.0", "b0.1.0"]),
        Err(SelectError::NoVersionInRange)
    );
    assert_eq!(semver("1.0.x", &[]), Err(SelectError::EmptyTagList));
    assert_eq!(
        semver("1.0.x", &["1.2.0"]),
        Err(SelectError::NoVersionInRange)
    );
    assert_eq!(
        SelectError::NoVersionInRange.to_string(),
        "unable to determine latest version from provided list"
    );
}

#[test]
fn flux_range_validity() {
    for bad in ["1.0.0p", "1x", "x1", "-1", "a", "", "*-*"] {
        assert!(
            matches!(Policy::semver(bad), Err(PolicyError::InvalidRange(_))),
            "{bad:?} is invalid"
        );
    }
    for good in ["1.0.x", "^1.0", "=1.0.0", "~1.0", ">=1.0", ">0,<2.0"] {
        assert!(Policy::semver(good).is_ok(), "{good:?} is valid");
    }
}

#[test]
fn flux_version_parsing() {
    use crate::semver::Version;
    for ok in [
        "v1.2.3",
        "v2025.07.03",
        "v1.2.0-x.Y.0+metadata",
        "v1.2.3-rc1-with-hypen",
    ] {
        assert!(Version::parse_tag(ok).is_ok(), "{ok}");
    }
    for bad in [
        "v1.0",
        "v1",
        "v1.2.beta",
        "v1.2-5",
        "v1.2-beta5",
        "\nv1.2",
        "v1.2.3.4",
    ] {
        assert!(Version::parse_tag(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        Version::parse_tag("1.2-rc.1").unwrap().to_string(),
        "1.2.0-rc.1"
    );
}

#[test]
fn seed_guide_ranges() {
    let tags = [
        "5.0.0",
        "5.0.1",
        "5.0.2",
        "5.0.3",
        "5.1.0",
        "6.0.0",
        "6.0.0-rc.1",
        "latest",
        "main-abc1234",
    ];
    assert_eq!(semver("5.0.x", &tags).unwrap(), "5.0.3");
    assert_eq!(
        semver(">=1.0.0 <2.0.0", &["1.0.0", "1.9.9", "2.0.0"]).unwrap(),
        "1.9.9"
    );
    assert_eq!(
        semver("^1.x-0", &["1.0.0", "1.9.0-rc.2", "1.8.5", "2.0.0-rc.1"]).unwrap(),
        "1.9.0-rc.2"
    );
    assert_eq!(
        semver(
            ">1.0.0-rc <2.0.0-rc",
            &["1.0.0-rc.1", "1.5.0-rc.2", "2.0.0-rc.1"]
        )
        .unwrap(),
        "1.5.0-rc.2"
    );
    assert_eq!(semver(">5.0.1", &tags).unwrap(), "6.0.0");
    assert_eq!(semver("5.0.0", &tags).unwrap(), "5.0.0");
}

#[test]
fn equal_precedence_keeps_the_bytewise_greatest_tag() {
    assert_eq!(semver(">=1.0.0", &["1.0.0", "v1.0.0"]).unwrap(), "v1.0.0");
    assert_eq!(semver(">=1.0.0", &["v1.0.0", "1.0.0"]).unwrap(), "v1.0.0");
    assert_eq!(
        semver(">=1.0.0", &["1.0.0+b", "1.0.0+a", "1.0.0"]).unwrap(),
        "1.0.0+b"
    );
    assert_eq!(
        semver(">=1.0.0", &["01.0.0", "1.00.0", "1.0.0"]).unwrap(),
        "1.00.0"
    );
}

#[test]
fn flux_alphabetical_vectors() {
    let ubuntu = ["16.04", "16.04.1", "16.10", "20.04", "20.10"];
    assert_eq!(alpha(Order::Asc, &ubuntu), "20.10");
    assert_eq!(alpha(Order::Desc, &ubuntu), "16.04");
    let names = ["xenial", "yakkety", "zesty", "artful", "bionic"];
    assert_eq!(alpha(Order::Asc, &names), "zesty");
    assert_eq!(alpha(Order::Desc, &names), "artful");
    let times = [
        "2023-05-08T00-20-00Z",
        "1990-01-08T00-20-00Z",
        "2010-12-31T23-59-59Z",
    ];
    assert_eq!(alpha(Order::Asc, &times), "2023-05-08T00-20-00Z");
    assert_eq!(alpha(Order::Desc, &times), "1990-01-08T00-20-00Z");
}

#[test]
fn flux_numerical_vectors() {
    let a = [
        "-62", "-88", "73", "72", "15", "16", "15", "29", "-33", "-91",
    ];
    assert_eq!(numeric(Order::Asc, &a).unwrap(), "73");
    let b = ["5", "-8", "-78", "25", "70", "-4", "80", "92", "-20", "-24"];
    assert_eq!(numeric(Order::Desc, &b).unwrap(), "-78");
    assert_eq!(
        numeric(Order::Asc, &["0", "1a", "b"]),
        Err(SelectError::NonNumericTag {
            tag: "b".into(),
            value: "b".into()
        }),
        "the byte-wise greatest non-number is named, as Flux's descending iteration meets it first"
    );
    assert_eq!(
        SelectError::NonNumericTag {
            tag: "1a".into(),
            value: "1a".into()
        }
        .to_string(),
        "failed to parse invalid numeric value '1a'"
    );
}

#[test]
fn numerical_uses_go_float_syntax_and_breaks_ties_like_flux() {
    assert_eq!(
        numeric(Order::Asc, &["1e3", "999", "0x1p4"]).unwrap(),
        "1e3"
    );
    assert_eq!(numeric(Order::Asc, &["1_000", "999"]).unwrap(), "1_000");
    assert_eq!(
        numeric(Order::Desc, &["+5", "Inf", "-Inf"]).unwrap(),
        "-Inf"
    );
    // Ties: Flux's fold over the descending byte order replaces on equal, so the byte-wise smallest wins.
    assert_eq!(numeric(Order::Asc, &["1.0", "1", "01"]).unwrap(), "01");
    assert_eq!(numeric(Order::Desc, &["1.0", "1", "1e0"]).unwrap(), "1");
    // NaN, as Go's comparisons treat it: the fold over ["NaN", "9", "1"] (descending bytes) takes NaN, then
    // 9 (9 < NaN is false), then keeps 9 (1 < 9).
    assert_eq!(numeric(Order::Asc, &["1", "9", "NaN"]).unwrap(), "9");
    assert_eq!(numeric(Order::Asc, &["1", "NaN"]).unwrap(), "1");
    assert_eq!(numeric(Order::Asc, &["NaN"]).unwrap(), "NaN");
}

#[test]
fn flux_filter_vectors() {
    let p = Policy::new(Selector::Alphabetical(Order::Asc))
        .with_filter(r"ver(\d+)", Some("$1"))
        .unwrap();
    assert_eq!(p.select(&["ver1", "ver2", "ver3", "rel1"]).unwrap(), "ver3");

    let p = Policy::new(Selector::Numerical(Order::Asc))
        .with_filter(r"1.0.0-rc\.(?P<num>[0-9]+)", Some("$num"))
        .unwrap();
    assert_eq!(
        p.select(&[
            "1.0.0",
            "1.0.0-rc.1",
            "1.0.0-rc.2",
            "1.0.0-rc.3",
            "1.0.1-rc.2"
        ])
        .unwrap(),
        "1.0.0-rc.3"
    );

    let p = Policy::semver(">=0.x")
        .unwrap()
        .with_filter("^test-(.*)$", Some("$1"))
        .unwrap();
    assert_eq!(
        p.select(&["test-0.1.0", "test-0.1.1", "dev-0.2.0", "1.0.0"])
            .unwrap(),
        "test-0.1.1"
    );
}

#[test]
fn filter_without_extract_and_unmatched_filters() {
    let p = Policy::semver("*")
        .unwrap()
        .with_filter(r"^\d+\.\d+\.\d+$", None)
        .unwrap();
    assert_eq!(
        p.select(&["1.0.0", "2.0.0-rc.1", "v3.0.0"]).unwrap(),
        "1.0.0"
    );
    let p = Policy::new(Selector::Alphabetical(Order::Asc))
        .with_filter("^nope", Some("$0"))
        .unwrap();
    assert_eq!(
        p.select(&["a", "b"]),
        Err(SelectError::NoTagMatchesFilter {
            pattern: "^nope".into()
        })
    );
}

#[test]
fn duplicate_extracted_values_keep_the_bytewise_smallest_original() {
    let p = Policy::new(Selector::Alphabetical(Order::Asc))
        .with_filter(r"-(\d+)$", Some("$1"))
        .unwrap();
    assert_eq!(p.select(&["b-9", "a-9", "c-9", "z-1"]).unwrap(), "a-9");
    let p = Policy::new(Selector::Numerical(Order::Asc))
        .with_filter(r"^main-[0-9a-f]+-(\d+)$", Some("$1"))
        .unwrap();
    assert_eq!(
        p.select(&[
            "main-ffff-1700000002",
            "main-aaaa-1700000002",
            "main-bbbb-1700000001"
        ])
        .unwrap(),
        "main-aaaa-1700000002"
    );
}

#[test]
fn invalid_specs_are_distinct_errors() {
    assert!(matches!(
        Policy::semver(">=x.y.z"),
        Err(PolicyError::InvalidRange(_))
    ));
    let e = Policy::new(Selector::Alphabetical(Order::Asc))
        .with_filter("([", None)
        .unwrap_err();
    assert!(matches!(e, PolicyError::InvalidRegex(_)), "{e:?}");
    assert_eq!(
        Order::parse("ascending").unwrap_err().to_string(),
        "invalid order \"ascending\": expected asc or desc"
    );
}
