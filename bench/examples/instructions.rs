//! Makes N calls through one subject on one thread, to be counted by
//! callgrind: instructions are repeatable where wall time on a shared
//! machine is not.
//!
//! `valgrind --tool=callgrind target/release/examples/instructions <subject> <calls> [open]`
//! with subject `baseline`, `ours`, `tower-resilience` or `failsafe`.

use bench::{Baseline, Subject, failsafe, noop, one_thread, ours, tower_resilience, trip};

fn run<S: Subject>(subject: S, calls: u64, open: bool) {
    if open {
        trip(&subject, 5);
    }
    one_thread(&subject, calls);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().expect("a subject");
    let calls = args
        .next()
        .map_or(100_000, |n| n.parse().expect("a number of calls"));
    let open = args.next().is_some_and(|arg| arg == "open");
    match subject.as_str() {
        "baseline" => run(Baseline(noop()), calls, open),
        "ours" => run(ours(), calls, open),
        "tower-resilience" => run(tower_resilience(), calls, open),
        "failsafe" => run(failsafe(), calls, open),
        other => panic!("unknown subject {other}"),
    }
}
