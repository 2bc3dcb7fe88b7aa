//! The Utilbot Gateway client for Rust, over the native library (include/utilbot_gateway.h).
//!
//! A [`Client`] owns its handle (dropping it frees the client: no event after that) and is
//! `Send + Sync`: the C API lets any thread call any function, with one thread at a time pulling
//! events. Errors are [`Error`] values with the result code and the library's message. Events are
//! pulled ([`Client::next_event`], [`Client::events`]) as owned [`Event`]s that borrow nothing
//! from the library. For an async runtime, wait for [`Client::event_fd`] to become readable (a
//! readiness registration: tokio's `AsyncFd`, mio, epoll), then pull with a zero timeout until
//! `Ok(None)`.
//!
//! ```no_run
//! use std::time::Duration;
//! use utilbot_gateway::{Client, Event};
//!
//! let client = Client::builder("my-key").url("wss://gateway.utilbot.co/?v=1").build()?;
//! client.connect()?;
//! for event in client.events(Duration::from_secs(30)) {
//!     match event? {
//!         Event::Ready => client.send("send_servers", Some(r#"{"guilds":42}"#))?,
//!         Event::Dispatch { name, data } => println!("{name}: {data:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), utilbot_gateway::Error>(())
//! ```

pub mod sys;

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr;
use std::time::Duration;

/// A failed call: the result code (`sys::UBG_*` value), its name and the library's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    /// "UBG_EINVAL"
    pub fn name(&self) -> &'static str {
        unsafe { static_str(sys::ubg_result_name(self.code)) }
    }

    fn from_call(code: sys::ubg_result_t, client: sys::ubg_client_t) -> Error {
        let message = if client.is_null() {
            String::new()
        } else {
            unsafe { owned(sys::ubg_client_last_error(client)) }.unwrap_or_default()
        };
        let message = if message.is_empty() { unsafe { static_str(sys::ubg_result_string(code)) }.to_owned() } else { message };
        Error { code, message }
    }

    fn invalid(message: &str) -> Error {
        Error { code: 1, message: message.to_owned() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The client's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connecting,
    Identifying,
    Ready,
    Reconnecting,
    Closing,
    Closed,
    Failed,
}

impl State {
    fn from_raw(raw: sys::ubg_state_t) -> State {
        match raw {
            1 => State::Connecting,
            2 => State::Identifying,
            3 => State::Ready,
            4 => State::Reconnecting,
            5 => State::Closing,
            6 => State::Closed,
            7 => State::Failed,
            _ => State::Idle,
        }
    }
}

/// One event, owned: nothing in it points into the library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Identified (bot_connect_success); its Dispatch follows.
    Ready,
    /// An op 0 event: its name and the raw JSON of d (None when absent).
    Dispatch { name: String, data: Option<String> },
    /// An op -1 error from the gateway (code: e) or a local problem (`local`).
    Error { code: Option<i32>, message: String, data: Option<String>, local: bool },
    /// A connection or attempt ended; `reconnect`: a new attempt follows.
    Closed { code: i32, message: String, reconnect: bool, http_status: i32, result: i32 },
    /// The client gave up for good (4000, 4001, 4007); no events follow but State.
    Fatal { code: i32, message: String },
    /// The state changed.
    State(State),
    /// A log line at or above the client's log level.
    Log { level: i32, message: String },
}

impl Event {
    fn from_raw(e: &sys::ubg_event_t) -> Event {
        let text = |p: *const std::os::raw::c_char| unsafe { owned(p) };
        let data = if e.data.is_null() {
            None
        } else {
            let bytes = unsafe { std::slice::from_raw_parts(e.data as *const u8, e.data_len) };
            Some(String::from_utf8_lossy(bytes).into_owned())
        };
        match e.type_ {
            1 => Event::Ready,
            2 => Event::Dispatch { name: text(e.name).unwrap_or_default(), data },
            3 => Event::Error {
                code: if e.has_code != 0 { Some(e.code) } else { None },
                message: text(e.message).unwrap_or_default(),
                data,
                local: e.local != 0,
            },
            4 => Event::Closed {
                code: e.code,
                message: text(e.message).unwrap_or_default(),
                reconnect: e.reconnect != 0,
                http_status: e.http_status,
                result: e.result,
            },
            5 => Event::Fatal { code: e.code, message: text(e.message).unwrap_or_default() },
            6 => Event::State(State::from_raw(e.state)),
            _ => Event::Log { level: e.code, message: text(e.message).unwrap_or_default() },
        }
    }
}

unsafe fn owned(p: *const std::os::raw::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

unsafe fn static_str(p: *const std::os::raw::c_char) -> &'static str {
    if p.is_null() {
        ""
    } else {
        CStr::from_ptr(p).to_str().unwrap_or("")
    }
}

fn c_string(text: &str, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::invalid(&format!("{what} contains a NUL byte")))
}

fn millis(timeout: Duration) -> u32 {
    timeout.as_millis().min(u32::MAX as u128) as u32
}

/// The library's version, "0.1.0".
pub fn version() -> &'static str {
    unsafe { static_str(sys::ubg_version()) }
}

/// Settings for a [`Client`], applied by [`ClientBuilder::build`].
pub struct ClientBuilder {
    key: String,
    url: Option<String>,
    ca_file: Option<String>,
    compression: bool,
    proxy: Option<String>,
    proxy_from_env: bool,
    reconnect: Option<(Duration, Duration)>,
    max_queued_events: usize,
}

impl ClientBuilder {
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(url.to_owned());
        self
    }
    /// Trusts the CA certificates in this PEM file instead of the system store.
    pub fn ca_file(mut self, path: &str) -> Self {
        self.ca_file = Some(path.to_owned());
        self
    }
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }
    /// An http://, https://, socks5:// or socks5h:// proxy.
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxy = Some(url.to_owned());
        self
    }
    /// Whether the environment (https_proxy, no_proxy...) chooses a proxy when none is set.
    pub fn proxy_from_env(mut self, on: bool) -> Self {
        self.proxy_from_env = on;
        self
    }
    pub fn reconnect(mut self, base: Duration, cap: Duration) -> Self {
        self.reconnect = Some((base, cap));
        self
    }
    /// The pull queue's bound in events (0: the default); reading pauses when it is full.
    pub fn max_queued_events(mut self, count: usize) -> Self {
        self.max_queued_events = count;
        self
    }

    pub fn build(self) -> Result<Client> {
        let key = c_string(&self.key, "the key")?;
        let mut handle: sys::ubg_client_t = ptr::null_mut();
        let rc = unsafe { sys::ubg_client_create(ptr::null_mut(), key.as_ptr(), &mut handle) };
        if rc != sys::UBG_OK {
            return Err(Error { code: rc, message: "the key must be a non-empty UTF-8 string".into() });
        }
        let client = Client { handle };
        if let Some(url) = &self.url {
            let url = c_string(url, "the URL")?;
            client.check(unsafe { sys::ubg_client_set_url(handle, url.as_ptr()) })?;
        }
        if let Some(path) = &self.ca_file {
            let path = c_string(path, "the CA file")?;
            client.check(unsafe { sys::ubg_client_set_tls_ca(handle, path.as_ptr(), ptr::null()) })?;
        }
        client.check(unsafe { sys::ubg_client_set_compression(handle, self.compression as i32) })?;
        if let Some(proxy) = &self.proxy {
            let proxy = c_string(proxy, "the proxy")?;
            client.check(unsafe { sys::ubg_client_set_proxy(handle, proxy.as_ptr()) })?;
        }
        client.check(unsafe { sys::ubg_client_set_proxy_from_env(handle, self.proxy_from_env as i32) })?;
        if let Some((base, cap)) = self.reconnect {
            client.check(unsafe { sys::ubg_client_set_reconnect(handle, millis(base), millis(cap)) })?;
        }
        if self.max_queued_events > 0 {
            client.check(unsafe { sys::ubg_client_set_limits(handle, 0, 0, self.max_queued_events) })?;
        }
        Ok(client)
    }
}

/// One bot connection (one shard) that reconnects by itself. Dropping it frees it.
pub struct Client {
    handle: sys::ubg_client_t,
}

// The C API is thread-safe for every function (pulls one thread at a time, which `&self`
// allows: the library serialises them, and events are copied out before the next pull).
unsafe impl Send for Client {}
unsafe impl Sync for Client {}

impl Client {
    /// Settings for a client with this key, on the process-wide default loop.
    pub fn builder(key: &str) -> ClientBuilder {
        ClientBuilder {
            key: key.to_owned(),
            url: None,
            ca_file: None,
            compression: false,
            proxy: None,
            proxy_from_env: true,
            reconnect: None,
            max_queued_events: 0,
        }
    }

    fn check(&self, rc: sys::ubg_result_t) -> Result<()> {
        if rc == sys::UBG_OK {
            Ok(())
        } else {
            Err(Error::from_call(rc, self.handle))
        }
    }

    /// Connects; from then on it reconnects by itself until close(), drop or a fatal refusal.
    pub fn connect(&self) -> Result<()> {
        self.check(unsafe { sys::ubg_client_connect(self.handle) })
    }

    /// Sends an event; `data` is JSON text (an object) or None.
    pub fn send(&self, name: &str, data: Option<&str>) -> Result<()> {
        let name = c_string(name, "the name")?;
        let data = data.map(|d| c_string(d, "the data")).transpose()?;
        let data_ptr = data.as_ref().map_or(ptr::null(), |d| d.as_ptr());
        self.check(unsafe { sys::ubg_client_send(self.handle, name.as_ptr(), data_ptr) })
    }

    /// Closes for good with `code` (1000, or 3000-4999); Closed and State(Closed) follow.
    pub fn close(&self, code: i32) -> Result<()> {
        self.check(unsafe { sys::ubg_client_close(self.handle, code) })
    }

    pub fn state(&self) -> Result<State> {
        let mut state = 0;
        self.check(unsafe { sys::ubg_client_get_state(self.handle, &mut state) })?;
        Ok(State::from_raw(state))
    }

    pub fn stats(&self) -> Result<sys::ubg_stats_t> {
        let mut stats = sys::ubg_stats_t { size: std::mem::size_of::<sys::ubg_stats_t>(), ..Default::default() };
        self.check(unsafe { sys::ubg_client_get_stats(self.handle, &mut stats) })?;
        Ok(stats)
    }

    /// The oldest event, waiting up to `timeout`: Ok(None) on timeout, Err with code
    /// UBG_ECLOSED once no event will come again.
    pub fn next_event(&self, timeout: Duration) -> Result<Option<Event>> {
        let mut raw: sys::ubg_event_t = unsafe { std::mem::zeroed() };
        raw.size = std::mem::size_of::<sys::ubg_event_t>();
        let wait = timeout.as_millis().min(i32::MAX as u128) as i32;
        match unsafe { sys::ubg_client_next_event(self.handle, wait, &mut raw) } {
            sys::UBG_OK => Ok(Some(Event::from_raw(&raw))),
            sys::UBG_ETIMEOUT => Ok(None),
            rc => Err(Error::from_call(rc, self.handle)),
        }
    }

    /// A blocking iterator over the events; it ends when no event will come again, or when
    /// none comes within `idle` (then check state()).
    pub fn events(&self, idle: Duration) -> Events<'_> {
        Events { client: self, idle, done: false }
    }

    /// A descriptor readable while events wait: register it with an async runtime's readiness
    /// API, then pull with `next_event(Duration::ZERO)` until Ok(None). Owned by the client.
    pub fn event_fd(&self) -> Result<i32> {
        let mut fd = -1;
        self.check(unsafe { sys::ubg_client_get_event_fd(self.handle, &mut fd) })?;
        Ok(fd)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        unsafe { sys::ubg_client_free(self.handle) };
    }
}

/// See [`Client::events`].
pub struct Events<'a> {
    client: &'a Client,
    idle: Duration,
    done: bool,
}

impl Iterator for Events<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.client.next_event(self.idle) {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) if error.code == sys::UBG_ECLOSED => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}
