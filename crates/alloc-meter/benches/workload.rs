//! The workloads both bench binaries run: small allocations, a growing
//! vector, many short strings, and a Rhai script like a call flow's
//! compute between verbs.

use std::hint::black_box;

use criterion::Criterion;

const SCRIPT: &str = r#"
    let digits = "";
    let menu = #{};
    for i in 0..200 {
        digits += `${i % 10}`;
        menu["option" + i] = [i, "prompt_" + i];
    }
    let total = 0;
    for k in menu.keys() { total += menu[k][0]; }
    total + digits.len()
"#;

pub fn all(c: &mut Criterion, label: &str) {
    c.bench_function(&format!("{label}/box_64b"), |b| {
        b.iter(|| black_box(Box::new(black_box([0u8; 64]))))
    });
    c.bench_function(&format!("{label}/vec_push_1000"), |b| {
        b.iter(|| {
            let mut v = Vec::new();
            for i in 0..1000u32 {
                v.push(black_box(i));
            }
            v
        })
    });
    c.bench_function(&format!("{label}/strings_100"), |b| {
        b.iter(|| {
            (0..100)
                .map(|i| format!("sip:{i}@example.org"))
                .collect::<Vec<_>>()
        })
    });
    let engine = rhai::Engine::new();
    let ast = engine.compile(SCRIPT).expect("the bench script compiles");
    c.bench_function(&format!("{label}/rhai_script"), |b| {
        b.iter(|| engine.eval_ast::<i64>(&ast).expect("the bench script runs"))
    });
}
