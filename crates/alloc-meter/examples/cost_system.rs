//! `cost_system WORKLOAD N`: `cost_metered` on the plain system allocator.

mod workload;

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
