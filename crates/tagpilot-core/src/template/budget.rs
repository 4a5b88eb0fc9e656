//! The work budget of one execution, for what the step count cannot see: the walks inside functions and
//! printing (a value shared many times over, `uniq` of a long list, a value nested thousands deep). Each node
//! a walk visits spends one unit; a walk deeper than [`MAX_VALUE_DEPTH`] or past the budget stops early and
//! leaves a mark that the executor turns into an error after the call.

use std::cell::Cell;

/// Units of work one execution may spend in walks over values.
pub const MAX_WORK: u64 = 2_000_000;

/// How deep a walk descends into nested lists and maps.
pub const MAX_VALUE_DEPTH: usize = 500;

/// Why a walk stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The budget is spent.
    Work,
    /// A value nests deeper than [`MAX_VALUE_DEPTH`].
    Depth,
}

thread_local! {
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    static STOPPED: Cell<Option<Stop>> = const { Cell::new(None) };
}

/// Starts an execution's budget (restoring the outer one when the guard drops, for nested executions).
pub fn begin() -> Guard {
    let outer = (LEFT.with(Cell::get), STOPPED.with(Cell::get));
    LEFT.with(|l| l.set(MAX_WORK));
    STOPPED.with(|s| s.set(None));
    Guard { outer }
}

/// Restores the budget that was in force before [`begin`].
pub struct Guard {
    outer: (u64, Option<Stop>),
}

impl Drop for Guard {
    fn drop(&mut self) {
        LEFT.with(|l| l.set(self.outer.0));
        STOPPED.with(|s| s.set(self.outer.1));
    }
}

/// Spends `n` units; false (and the mark) when the budget is spent.
pub fn spend(n: u64) -> bool {
    let left = LEFT.with(Cell::get);
    if left < n {
        stop(Stop::Work);
        return false;
    }
    LEFT.with(|l| l.set(left - n));
    true
}

/// Whether a walk at `depth` may descend; false (and the mark) past [`MAX_VALUE_DEPTH`].
pub fn descend(depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        stop(Stop::Depth);
        return false;
    }
    spend(1)
}

fn stop(why: Stop) {
    STOPPED.with(|s| {
        if s.get().is_none() {
            s.set(Some(why));
        }
    });
}

/// Why a walk stopped since the execution began, if one did.
pub fn stopped() -> Option<Stop> {
    STOPPED.with(Cell::get)
}

/// The error message for a stop.
pub fn message(why: Stop) -> String {
    match why {
        Stop::Work => format!(
            "the template's values take more than {MAX_WORK} units of work to walk (tagpilot's limit)"
        ),
        Stop::Depth => {
            format!("a value nests deeper than {MAX_VALUE_DEPTH} levels (tagpilot's limit)")
        }
    }
}
