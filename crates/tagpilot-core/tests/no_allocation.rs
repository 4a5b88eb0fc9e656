//! Selection without an extract template makes no heap allocation at all: not per comparison, not per tag.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use tagpilot_core::policy::{Order, Policy, Selector};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local!(static COUNTING: Cell<bool> = const { Cell::new(false) });

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

#[test]
fn selecting_among_10k_tags_allocates_nothing() {
    let tags: Vec<String> = (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("{}.{}.{}", i % 7, i % 13, i % 29),
            1 => format!("v{}.{}.{}-rc.{}", i % 7, i % 13, i % 29, i % 5),
            2 => format!("{}", i * 37 % 1000),
            _ => format!("main-{i:07x}-{}", 1_700_000_000 + i),
        })
        .collect();
    let numbers: Vec<String> = (0..10_000)
        .map(|i| format!("{}", (i * 7919) % 10_007))
        .collect();
    let policies = [
        (Policy::semver(">=1.0.0 <5.0.0").unwrap(), &tags),
        (Policy::semver("^3.x-0").unwrap(), &tags),
        (Policy::new(Selector::Alphabetical(Order::Asc)), &tags),
        (Policy::new(Selector::Alphabetical(Order::Desc)), &tags),
        (Policy::new(Selector::Numerical(Order::Asc)), &numbers),
        (
            Policy::semver("*")
                .unwrap()
                .with_filter(r"^\d+\.\d+\.\d+$", None)
                .unwrap(),
            &tags,
        ),
    ];
    for (policy, tags) in &policies {
        // The first use of a regex on a thread builds its matching cache: warm up once.
        policy.select(tags).unwrap();
        let (selected, n) = allocations_during(|| policy.select(tags).map(str::len));
        assert!(selected.is_ok());
        assert_eq!(n, 0, "{policy:?} allocated {n} times");
    }
    // With an extract template, the buffers grow once and are reused: a handful of allocations, not 10,000.
    let extracting = Policy::new(Selector::Numerical(Order::Asc))
        .with_filter(r"^main-[0-9a-f]+-(\d+)$", Some("$1"))
        .unwrap();
    extracting.select(&tags).unwrap();
    let (selected, n) = allocations_during(|| extracting.select(&tags).map(str::len));
    assert!(selected.is_ok());
    assert!(
        n < 16,
        "extracting allocated {n} times for 2,500 matching tags"
    );
}
