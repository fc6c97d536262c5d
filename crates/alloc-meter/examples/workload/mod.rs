//! Workloads shared by the benches (time) and the `cost_*` examples
//! (instruction counts under valgrind): small allocations, a growing
//! vector, short strings, and a Rhai script like a call flow's compute.

use std::hint::black_box;
use std::sync::OnceLock;

pub const SCRIPT: &str = r#"
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

/// Every workload, by name.
pub const ALL: &[(&str, fn())] = &[
    ("box_64b", box_64b),
    ("vec_push_1000", vec_push_1000),
    ("strings_100", strings_100),
    ("rhai_script", rhai_script),
];

fn box_64b() {
    drop(black_box(Box::new(black_box([0u8; 64]))));
}

fn vec_push_1000() {
    let mut v = Vec::new();
    for i in 0..1000u32 {
        v.push(black_box(i));
    }
    drop(black_box(v));
}

fn strings_100() {
    let v: Vec<String> = (0..100).map(|i| format!("sip:{i}@example.org")).collect();
    drop(black_box(v));
}

/// The script, compiled once (the first run pays for it).
fn rhai_script() {
    static COMPILED: OnceLock<(rhai::Engine, rhai::AST)> = OnceLock::new();
    let (engine, ast) = COMPILED.get_or_init(|| {
        let engine = rhai::Engine::new();
        let ast = engine
            .compile(SCRIPT)
            .expect("the workload script compiles");
        (engine, ast)
    });
    let n = engine
        .eval_ast::<i64>(ast)
        .expect("the workload script runs");
    black_box(n);
}
