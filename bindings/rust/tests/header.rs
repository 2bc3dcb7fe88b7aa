//! The sys declarations against include/utilbot_gateway.h: the same functions in the same order,
//! and structs of the same size as the C compiler makes them.
use std::path::Path;
use std::process::Command;

use utilbot_gateway::sys;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap()
}

#[test]
fn every_header_function_is_declared_in_order() {
    let header = std::fs::read_to_string(root().join("include/utilbot_gateway.h")).unwrap();
    let declared: Vec<&str> = header
        .lines()
        .filter(|line| line.starts_with("UBG_API "))
        .filter_map(|line| line.split('(').next()?.rsplit(|c: char| c == ' ' || c == '*').next())
        .collect();
    assert_eq!(declared, sys::FUNCTIONS);
}

#[test]
fn structs_have_the_c_sizes() {
    let dir = std::env::temp_dir().join(format!("ubg-rust-sizes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("sizes.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include \"utilbot_gateway.h\"\nint main(void) { printf(\"%zu %zu\", sizeof(ubg_event_t), sizeof(ubg_stats_t)); return 0; }\n",
    )
    .unwrap();
    let program = dir.join("sizes");
    let status = Command::new("cc")
        .arg(format!("-I{}", root().join("include").display()))
        .arg(&source)
        .arg("-o")
        .arg(&program)
        .status()
        .unwrap();
    assert!(status.success());
    let output = String::from_utf8(Command::new(&program).output().unwrap().stdout).unwrap();
    let sizes: Vec<usize> = output.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(sizes, vec![std::mem::size_of::<sys::ubg_event_t>(), std::mem::size_of::<sys::ubg_stats_t>()]);
    std::fs::remove_dir_all(&dir).ok();
}
