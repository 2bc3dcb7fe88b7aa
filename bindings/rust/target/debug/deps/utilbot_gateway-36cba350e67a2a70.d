/work/main/bindings/rust/target/debug/deps/utilbot_gateway-36cba350e67a2a70.d: src/lib.rs src/sys.rs

/work/main/bindings/rust/target/debug/deps/libutilbot_gateway-36cba350e67a2a70.rlib: src/lib.rs src/sys.rs

/work/main/bindings/rust/target/debug/deps/libutilbot_gateway-36cba350e67a2a70.rmeta: src/lib.rs src/sys.rs

src/lib.rs:
src/sys.rs:
