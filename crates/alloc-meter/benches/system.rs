//! The workloads on the plain system allocator; see `metered`.

use criterion::{criterion_group, criterion_main, Criterion};

mod workload;

fn bench(c: &mut Criterion) {
    assert!(!alloc_meter::is_installed());
    workload::all(c, "system");
}

criterion_group!(benches, bench);
criterion_main!(benches);
