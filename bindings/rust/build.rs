// Links the native library: UBG_LIB_DIR, or the repository's release build
// (../../.build/release, made by `make release`). The rpath lets tests and examples run from there.
use std::path::PathBuf;

fn main() {
    let dir = std::env::var("UBG_LIB_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../.build/release")
    });
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=utilbot_gateway");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:rerun-if-env-changed=UBG_LIB_DIR");
}
