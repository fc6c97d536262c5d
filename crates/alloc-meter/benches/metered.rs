//! The workloads with `alloc_meter::Meter` as the global allocator; compare
//! with `system` (the same workloads on the plain system allocator).

use criterion::{criterion_group, criterion_main, Criterion};

mod workload;

#[global_allocator]
static ALLOC: alloc_meter::Meter = alloc_meter::Meter;

fn bench(c: &mut Criterion) {
    assert!(alloc_meter::is_installed());
    workload::all(c, "metered");
}

criterion_group!(benches, bench);
criterion_main!(benches);
