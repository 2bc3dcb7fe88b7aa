//! The safe layer against the dev gateway: ready, events, send, a wrong key, wss with zlib,
//! close, and threads sending while another pulls.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use utilbot_gateway::{sys, Client, Event, State};

struct DevGateway {
    child: Child,
    url: String,
    ca: String,
}

impl DevGateway {
    fn start(flags: &[&str]) -> DevGateway {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().parent().unwrap();
        let python = std::env::var("UBG_PYTHON").unwrap_or_else(|_| root.join(".venv/bin/python3").display().to_string());
        let mut child = Command::new(python)
            .args(["-m", "utilbot_gateway.devserver", "--heartbeat", "200", "--heartbeat-grace", "2000", "--key", "dev-key"])
            .args(flags)
            .env("PYTHONPATH", root.join("bindings/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the dev gateway (run make bootstrap)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let field = |key: &str| {
            let at = line.find(&format!("\"{key}\": \"")).map(|i| i + key.len() + 5);
            at.map(|i| line[i..i + line[i..].find('"').unwrap()].to_owned()).unwrap_or_default()
        };
        let (url, ca) = (field("url"), field("ca"));
        DevGateway { child, url, ca }
    }

    fn url(&self, query: &str) -> String {
        format!("{}?{}", self.url, query)
    }
}

impl Drop for DevGateway {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // end of stdin: it exits
        self.child.wait().ok();
    }
}

fn wait_for(client: &Client, wanted: impl Fn(&Event) -> bool) -> Option<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match client.next_event(Duration::from_millis(200)) {
            Ok(Some(event)) if wanted(&event) => return Some(event),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn fast(builder: utilbot_gateway::ClientBuilder) -> utilbot_gateway::ClientBuilder {
    builder.reconnect(Duration::from_millis(50), Duration::from_millis(400))
}

#[test]
fn ready_send_events_and_close() {
    let gateway = DevGateway::start(&[]);
    let client = fast(Client::builder("dev-key").url(&gateway.url("v=1"))).build().unwrap();
    assert_eq!(client.state().unwrap(), State::Idle);
    assert_eq!(client.send("x", Some("{}")).unwrap_err().code, 2); // UBG_ESTATE: not connected
    client.connect().unwrap();
    assert!(wait_for(&client, |e| *e == Event::Ready).is_some());
    let error = client.send("x", Some("{not json")).unwrap_err();
    assert_eq!(error.name(), "UBG_EJSON");
    assert!(error.to_string().starts_with("UBG_EJSON: invalid JSON at byte"));
    client.send("send_servers", Some(r#"{"guilds":3,"guildMembers":30,"cachedGuildMembers":10}"#)).unwrap();
    let count = wait_for(&client, |e| matches!(e, Event::Dispatch { name, .. } if name == "GLOBAL_GUILD_COUNT"));
    match count {
        Some(Event::Dispatch { data: Some(data), .. }) => assert!(data.contains("\"guilds\":3")),
        other => panic!("no GLOBAL_GUILD_COUNT: {other:?}"),
    }
    client.close(1000).unwrap();
    let rest: Vec<Event> = client.events(Duration::from_secs(10)).map(|e| e.unwrap()).collect();
    assert!(rest.iter().any(|e| matches!(e, Event::Closed { code: 1000, reconnect: false, .. })));
    assert_eq!(rest.last(), Some(&Event::State(State::Closed)));
    assert_eq!(client.next_event(Duration::ZERO).unwrap_err().code, sys::UBG_ECLOSED);
}

#[test]
fn a_wrong_key_is_fatal() {
    let gateway = DevGateway::start(&[]);
    let client = fast(Client::builder("wrong-key").url(&gateway.url("v=1"))).build().unwrap();
    client.connect().unwrap();
    let fatal = wait_for(&client, |e| matches!(e, Event::Fatal { .. }));
    assert!(matches!(fatal, Some(Event::Fatal { code: 4001, .. })), "{fatal:?}");
    let _ = client.events(Duration::from_secs(5)).count();
    assert_eq!(client.state().unwrap(), State::Failed);
}

#[test]
fn wss_with_the_dev_ca_and_zlib() {
    let gateway = DevGateway::start(&["--tls", "--echo"]);
    let client = fast(Client::builder("dev-key").url(&gateway.url("v=1")).ca_file(&gateway.ca).compression(true))
        .build()
        .unwrap();
    client.connect().unwrap();
    assert!(wait_for(&client, |e| *e == Event::Ready).is_some());
    client.send("hello", Some(r#"{"n":1}"#)).unwrap();
    let echo = wait_for(&client, |e| matches!(e, Event::Dispatch { name, .. } if name == "ECHO"));
    assert!(matches!(echo, Some(Event::Dispatch { data: Some(ref d), .. }) if d.contains("\"n\":1")), "{echo:?}");
}

#[test]
fn threads_send_while_another_pulls() {
    let gateway = DevGateway::start(&["--echo"]);
    let client = Arc::new(fast(Client::builder("dev-key").url(&gateway.url("v=1"))).build().unwrap());
    client.connect().unwrap();
    assert!(wait_for(&client, |e| *e == Event::Ready).is_some());
    let senders: Vec<_> = (0..4)
        .map(|thread| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                for n in 0..25 {
                    client.send("count", Some(&format!(r#"{{"thread":{thread},"n":{n}}}"#))).unwrap();
                }
            })
        })
        .collect();
    let mut echoes = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while echoes < 100 && Instant::now() < deadline {
        if let Ok(Some(Event::Dispatch { name, .. })) = client.next_event(Duration::from_millis(200)) {
            if name == "ECHO" {
                echoes += 1;
            }
        }
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(echoes, 100);
}

#[test]
fn bad_settings_are_errors() {
    assert!(Client::builder("").build().is_err());
    let error = Client::builder("dev-key").url("http://not-websocket/").build().err().unwrap();
    assert_eq!(error.name(), "UBG_EINVAL");
    assert!(Client::builder("dev-key").proxy("ftp://x").build().is_err());
}
