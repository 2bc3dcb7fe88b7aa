/work/main/bindings/rust/target/debug/deps/header-b68358e4198b53c0.d: tests/header.rs

/work/main/bindings/rust/target/debug/deps/header-b68358e4198b53c0: tests/header.rs

tests/header.rs:

# env-dep:CARGO_MANIFEST_DIR=/work/main/bindings/rust
