//! `cost_metered WORKLOAD N`: runs a workload N times with the meter as the
//! global allocator, for `valgrind --tool=callgrind`; compare with
//! `cost_system`. See docs/security.md "Scripts" for the figures.

mod workload;

#[global_allocator]
static ALLOC: alloc_meter::Meter = alloc_meter::Meter;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
    let name = args.get(1).map(String::as_str).unwrap_or("");
    let Some(&(_, run)) = workload::ALL.iter().find(|(w, _)| *w == name) else {
        eprintln!("usage: WORKLOAD N, with WORKLOAD one of box_64b, vec_push_1000, strings_100, rhai_script");
        std::process::exit(2);
    };
    for _ in 0..n {
        run();
    }
}
