//! A minimal Utilbot bot in Rust (bindings/rust): connect, identify, report servers, print
//! events, close. Run: cargo run --example bot -- wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE]
use std::time::Duration;

use utilbot_gateway::{Client, Event, State};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} URL KEY [CA_FILE]", args[0]);
        std::process::exit(2);
    }
    let mut builder = Client::builder(&args[2]).url(&args[1]);
    if let Some(ca) = args.get(3) {
        builder = builder.ca_file(ca);
    }
    let client = builder.build()?;
    client.connect()?;
    // Pull mode: events come to this thread until none will come again.
    for event in client.events(Duration::from_secs(30)) {
        match event? {
            Event::Ready => {
                println!("ready: identified with the gateway");
                let servers = r#"{"guilds":42,"guildMembers":1337,"cachedGuildMembers":512}"#;
                client.send("send_servers", Some(servers))?;
            }
            Event::Dispatch { name, data } => {
                println!("event {name}: {}", data.as_deref().unwrap_or("null"));
                if name == "GLOBAL_GUILD_COUNT" {
                    client.close(1000)?; // the demo is over
                }
            }
            Event::Error { code, message, .. } => println!("error {code:?}: {message}"),
            Event::Closed { code, reconnect, .. } => {
                println!("closed with {code}{}", if reconnect { ", reconnecting" } else { "" })
            }
            Event::Fatal { message, .. } => println!("fatal: {message}"),
            _ => {}
        }
    }
    std::process::exit(if client.state()? == State::Closed { 0 } else { 1 });
}
