//! Compiles the spandsp C shim (`shim/spandsp_shim.c`) and links libspandsp,
//! found through pkg-config (Debian `libspandsp-dev`).

fn main() {
    println!("cargo:rerun-if-changed=shim/spandsp_shim.c");
    let spandsp = match pkg_config::Config::new()
        .atleast_version("0.0.6")
        .probe("spandsp")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "codecs-bench needs spandsp (apt-get install -y libspandsp-dev; `make bench` does it): {e}"
            );
            std::process::exit(1);
        }
    };
    let mut build = cc::Build::new();
    build
        .file("shim/spandsp_shim.c")
        .warnings(true)
        // g711.h uses helpers from other headers; a missing one must fail
        // the build, not become an undefined symbol at link time.
        .flag_if_supported("-Werror=implicit-function-declaration")
        .opt_level(2);
    for dir in &spandsp.include_paths {
        build.include(dir);
    }
    build.compile("rivr_spandsp_shim");
}
