/work/main/bindings/rust/target/debug/deps/utilbot_gateway-323b8824544f89d0.d: src/lib.rs src/sys.rs

/work/main/bindings/rust/target/debug/deps/utilbot_gateway-323b8824544f89d0: src/lib.rs src/sys.rs

src/lib.rs:
src/sys.rs:
