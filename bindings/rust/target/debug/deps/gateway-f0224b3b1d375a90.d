/work/main/bindings/rust/target/debug/deps/gateway-f0224b3b1d375a90.d: tests/gateway.rs

/work/main/bindings/rust/target/debug/deps/gateway-f0224b3b1d375a90: tests/gateway.rs

tests/gateway.rs:

# env-dep:CARGO_MANIFEST_DIR=/work/main/bindings/rust
