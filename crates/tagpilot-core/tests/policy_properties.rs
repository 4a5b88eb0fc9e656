//! Property tests: the selected tag is the maximum under the documented order, whatever the input order.

use std::cmp::Ordering;

use proptest::prelude::*;
use tagpilot_core::policy::{Order, Policy, Selector, parse_go_float};
use tagpilot_core::semver::{Range, Version};

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            0u64..4,
            0u64..4,
            0u64..4,
            prop::option::of("(alpha|beta|rc)(\\.[0-9]{1,2})?"),
            any::<bool>()
        )
            .prop_map(|(a, b, c, pre, v)| {
                let mut s = format!("{}{a}.{b}.{c}", if v { "v" } else { "" });
                if let Some(p) = pre {
                    s.push('-');
                    s.push_str(&p);
                }
                s
            }),
        "[0-9]{1,3}",
        "main-[0-9a-f]{7}-[0-9]{10}",
        "20[0-9]{2}\\.[0-1][0-9]\\.[0-3][0-9]",
        "[a-z0-9._-]{1,12}",
    ]
}

fn range() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just(">=1.0.0-0".to_string()),
        Just("^1.x-0".to_string()),
        (0u64..4, 0u64..4).prop_map(|(a, b)| format!("{a}.{b}.x")),
        (0u64..4).prop_map(|a| format!("^{a}")),
        (0u64..4, 0u64..4).prop_map(|(a, b)| format!(">={a}.{b}.0 <{}.0.0", a + 1)),
        (0u64..4, 0u64..4, 0u64..4).prop_map(|(a, b, c)| format!("~{a}.{b}.{c} || >3.0.0-rc")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn semver_selects_the_maximum(tags in prop::collection::vec(tag(), 0..40), r in range()) {
        let policy = Policy::semver(&r).unwrap();
        let range = Range::parse(&r).unwrap();
        let matching: Vec<&String> = tags
            .iter()
            .filter(|t| Version::parse_tag(t).map(|v| range.matches(&v)).unwrap_or(false))
            .collect();
        match policy.select(&tags) {
            Err(_) => prop_assert!(matching.is_empty()),
            Ok(sel) => {
                let s = Version::parse_tag(sel).unwrap();
                prop_assert!(range.matches(&s));
                for t in &matching {
                    let v = Version::parse_tag(t).unwrap();
                    match v.precedence(&s) {
                        Ordering::Greater => prop_assert!(false, "{t} beats {sel}"),
                        Ordering::Equal => prop_assert!(t.as_str() <= sel, "{t} ties {sel} and is byte-wise greater"),
                        Ordering::Less => {}
                    }
                }
            }
        }
        // The result does not depend on the order of the input.
        let mut reversed = tags.clone();
        reversed.reverse();
        prop_assert_eq!(policy.select(&tags).ok(), policy.select(&reversed).ok());
    }

    #[test]
    fn alphabetical_selects_the_extreme(tags in prop::collection::vec(tag(), 1..40)) {
        let asc = Policy::new(Selector::Alphabetical(Order::Asc)).select(&tags).unwrap();
        let desc = Policy::new(Selector::Alphabetical(Order::Desc)).select(&tags).unwrap();
        prop_assert!(tags.iter().all(|t| t.as_str() <= asc && t.as_str() >= desc));
    }

    #[test]
    fn numerical_selects_the_extreme(nums in prop::collection::vec(-1000i64..1000, 1..40)) {
        let tags: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
        let asc = Policy::new(Selector::Numerical(Order::Asc)).select(&tags).unwrap();
        let desc = Policy::new(Selector::Numerical(Order::Desc)).select(&tags).unwrap();
        prop_assert_eq!(asc.parse::<i64>().unwrap(), *nums.iter().max().unwrap());
        prop_assert_eq!(desc.parse::<i64>().unwrap(), *nums.iter().min().unwrap());
    }

    #[test]
    fn extracting_the_whole_tag_changes_nothing(tags in prop::collection::vec(tag(), 1..40), r in range()) {
        for selector in [
            Selector::SemVer(Range::parse(&r).unwrap()),
            Selector::Alphabetical(Order::Asc),
            Selector::Alphabetical(Order::Desc),
        ] {
            let plain = Policy::new(selector.clone());
            let extracting = Policy::new(selector).with_filter("^.*$", Some("$0")).unwrap();
            prop_assert_eq!(plain.select(&tags).ok(), extracting.select(&tags).ok());
        }
    }

    #[test]
    fn nothing_panics_on_arbitrary_input(text in "\\PC{0,40}", tags in prop::collection::vec("\\PC{0,20}", 0..10)) {
        if let Ok(p) = Policy::semver(&text) {
            let _ = p.select(&tags);
        }
        if let Ok(p) = Policy::new(Selector::Numerical(Order::Asc)).with_filter(&text, Some("$1")) {
            let _ = p.select(&tags);
        }
        let _ = Version::parse(&text);
        let _ = parse_go_float(&text);
    }
}
