//! The C declarations of include/utilbot_gateway.h, one for one (tests/header.rs checks every
//! function name and the struct sizes against the header). Use the safe layer instead.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub type ubg_result_t = c_int;
pub type ubg_state_t = c_int;
pub type ubg_event_type_t = c_int;
pub type ubg_log_level_t = c_int;

#[repr(C)]
pub struct ubg_loop_s {
    _private: [u8; 0],
}
pub type ubg_loop_t = *mut ubg_loop_s;

#[repr(C)]
pub struct ubg_client_s {
    _private: [u8; 0],
}
pub type ubg_client_t = *mut ubg_client_s;

pub const UBG_OK: ubg_result_t = 0;
pub const UBG_ETIMEOUT: ubg_result_t = 12;
pub const UBG_ECLOSED: ubg_result_t = 20;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ubg_event_t {
    pub size: usize,
    pub type_: ubg_event_type_t,
    pub name: *const c_char,
    pub data: *const c_char,
    pub data_len: usize,
    pub code: i32,
    pub has_code: i32,
    pub message: *const c_char,
    pub local: i32,
    pub reconnect: i32,
    pub http_status: i32,
    pub state: ubg_state_t,
    pub result: ubg_result_t,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ubg_stats_t {
    pub size: usize,
    pub state: ubg_state_t,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub reconnects: u64,
    pub last_latency_us: i64,
    pub average_latency_us: i64,
    pub queued_events: u64,
    pub queue_full_count: u64,
    pub sends_failed: u64,
}

pub type ubg_event_cb = Option<unsafe extern "C" fn(ubg_client_t, *const ubg_event_t, *mut c_void)>;

extern "C" {
    pub fn ubg_version() -> *const c_char;
    pub fn ubg_result_name(result: ubg_result_t) -> *const c_char;
    pub fn ubg_result_string(result: ubg_result_t) -> *const c_char;
    pub fn ubg_close_code_name(code: i32) -> *const c_char;
    pub fn ubg_close_code_is_fatal(code: i32) -> i32;
    pub fn ubg_state_name(state: ubg_state_t) -> *const c_char;
    pub fn ubg_loop_create(out_loop: *mut ubg_loop_t) -> ubg_result_t;
    pub fn ubg_loop_free(loop_: ubg_loop_t) -> ubg_result_t;
    pub fn ubg_client_create(loop_: ubg_loop_t, key: *const c_char, out_client: *mut ubg_client_t) -> ubg_result_t;
    pub fn ubg_client_free(client: ubg_client_t) -> ubg_result_t;
    pub fn ubg_client_last_error(client: ubg_client_t) -> *const c_char;
    pub fn ubg_client_set_url(client: ubg_client_t, url: *const c_char) -> ubg_result_t;
    pub fn ubg_client_set_proxy(client: ubg_client_t, url: *const c_char) -> ubg_result_t;
    pub fn ubg_client_set_proxy_from_env(client: ubg_client_t, enabled: i32) -> ubg_result_t;
    pub fn ubg_client_set_identity(client: ubg_client_t, type_: *const c_char, key: *const c_char) -> ubg_result_t;
    pub fn ubg_client_set_compression(client: ubg_client_t, enabled: i32) -> ubg_result_t;
    pub fn ubg_client_set_tls_ca(client: ubg_client_t, ca_file: *const c_char, ca_dir: *const c_char) -> ubg_result_t;
    pub fn ubg_client_set_tls_insecure_skip_verify(client: ubg_client_t, insecure: i32) -> ubg_result_t;
    pub fn ubg_client_set_reconnect(client: ubg_client_t, base_ms: u32, max_ms: u32) -> ubg_result_t;
    pub fn ubg_client_set_timeouts(client: ubg_client_t, connect_ms: u32, hello_ms: u32, close_ms: u32) -> ubg_result_t;
    pub fn ubg_client_set_limits(
        client: ubg_client_t, max_message_bytes: usize, max_queued_sends: usize, max_queued_events: usize,
    ) -> ubg_result_t;
    pub fn ubg_client_set_queue_bytes(
        client: ubg_client_t, max_queued_send_bytes: usize, max_queued_event_bytes: usize,
    ) -> ubg_result_t;
    pub fn ubg_client_set_ready_timeout(client: ubg_client_t, ready_ms: u32) -> ubg_result_t;
    pub fn ubg_client_set_event_callback(client: ubg_client_t, callback: ubg_event_cb, user_data: *mut c_void)
        -> ubg_result_t;
    pub fn ubg_client_set_log_level(client: ubg_client_t, level: ubg_log_level_t) -> ubg_result_t;
    pub fn ubg_client_connect(client: ubg_client_t) -> ubg_result_t;
    pub fn ubg_client_send(client: ubg_client_t, name: *const c_char, data: *const c_char) -> ubg_result_t;
    pub fn ubg_client_close(client: ubg_client_t, code: i32) -> ubg_result_t;
    pub fn ubg_client_get_state(client: ubg_client_t, out_state: *mut ubg_state_t) -> ubg_result_t;
    pub fn ubg_client_get_stats(client: ubg_client_t, stats: *mut ubg_stats_t) -> ubg_result_t;
    pub fn ubg_client_next_event(client: ubg_client_t, timeout_ms: i32, event: *mut ubg_event_t) -> ubg_result_t;
    pub fn ubg_client_next_events(
        client: ubg_client_t, timeout_ms: i32, events: *mut ubg_event_t, capacity: usize, out_count: *mut usize,
    ) -> ubg_result_t;
    pub fn ubg_client_get_event_fd(client: ubg_client_t, out_fd: *mut i32) -> ubg_result_t;
}

/// Every function declared above, in the header's order (checked by tests/header.rs).
pub const FUNCTIONS: &[&str] = &[
    "ubg_version", "ubg_result_name", "ubg_result_string", "ubg_close_code_name", "ubg_close_code_is_fatal",
    "ubg_state_name", "ubg_loop_create", "ubg_loop_free", "ubg_client_create", "ubg_client_free",
    "ubg_client_last_error", "ubg_client_set_url", "ubg_client_set_proxy", "ubg_client_set_proxy_from_env",
    "ubg_client_set_identity", "ubg_client_set_compression", "ubg_client_set_tls_ca",
    "ubg_client_set_tls_insecure_skip_verify", "ubg_client_set_reconnect", "ubg_client_set_timeouts",
    "ubg_client_set_limits", "ubg_client_set_queue_bytes", "ubg_client_set_ready_timeout",
    "ubg_client_set_event_callback", "ubg_client_set_log_level", "ubg_client_connect", "ubg_client_send",
    "ubg_client_close", "ubg_client_get_state", "ubg_client_get_stats", "ubg_client_next_event",
    "ubg_client_next_events", "ubg_client_get_event_fd",
];
