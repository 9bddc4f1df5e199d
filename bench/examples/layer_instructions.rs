//! Makes N gRPC-shaped calls through one listener layer on one thread, to
//! be counted by callgrind (see `bench/instructions.sh`).
//!
//! `valgrind --tool=callgrind target/release/examples/layer_instructions <subject> <calls>`
//! with subject `baseline`, `metrics`, `deadline` or `unknown-method`.

use bench::layers;
use resilient_catalog::telemetry::metrics;

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().expect("a subject");
    let calls = args
        .next()
        .map_or(100_000, |n| n.parse().expect("a number of calls"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // Installed for every subject, so that only the layer differs.
        let _handle = metrics::install().expect("the recorder installs");
        match subject.as_str() {
            "baseline" => layers::call(layers::answering(), calls).await,
            "metrics" => layers::call(layers::with_metrics(), calls).await,
            "deadline" => layers::call(layers::with_deadline(), calls).await,
            "unknown-method" => layers::call(layers::with_unknown_method(), calls).await,
            other => panic!("unknown subject {other}"),
        }
    });
}
