//! The criterion side of `examples/workload`.

use criterion::Criterion;

#[path = "../examples/workload/mod.rs"]
mod shared;

pub fn all(c: &mut Criterion, label: &str) {
    for &(name, run) in shared::ALL {
        c.bench_function(&format!("{label}/{name}"), |b| b.iter(run));
    }
}
