use std::path::Path;

#[test]
fn dump() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/rfc4475");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    names.sort();
    for p in names {
        let bytes = std::fs::read(&p).unwrap();
        let r = rivr::sip::wire::parse_message(&bytes);
        println!(
            "{:14} {:?}",
            p.file_stem().unwrap().to_string_lossy(),
            r.as_ref().map(|_| "OK").map_err(|e| e.clone())
        );
    }
}
