"""A minimal Utilbot bot in Python: connect, identify, report servers, print events, close.

Run: python3 bot.py wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE]
"""

import sys

from utilbot_gateway import Client, UbgError


def main() -> int:
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} URL KEY [CA_FILE]", file=sys.stderr)
        return 2
    url, key = sys.argv[1], sys.argv[2]
    ca_file = sys.argv[3] if len(sys.argv) > 3 else None

    with Client(key, url=url, ca_file=ca_file) as client:

        @client.on_ready
        def ready(event):
            print("ready: identified with the gateway")
            client.send("send_servers", {"guilds": 42, "guildMembers": 1337, "cachedGuildMembers": 512})

        @client.on("GLOBAL_GUILD_COUNT")
        def global_count(event):
            print(f"global: {event.data['guilds']} guilds, {event.data['guildMembers']} members")
            client.close()  # the demo is over

        @client.on_error
        def error(event):
            print(f"error {event.code}: {event.message}")

        @client.on_close
        def closed(event):
            print(f"closed with {event.code}" + (", reconnecting" if event.reconnect else ""))

        try:
            client.run_forever()
        except UbgError as refused:
            print(f"fatal: {refused}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
