"""The same bot with asyncio: the client waits on the library's event descriptor, no threads.

Run: python3 async_bot.py wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE]
"""

from __future__ import annotations

import asyncio
import sys

from utilbot_gateway import AsyncClient, EventType


async def main(url: str, key: str, ca_file: str | None) -> int:
    async with AsyncClient(key, url=url, ca_file=ca_file) as client:
        async for event in client:
            if event.type == EventType.READY:
                print("ready: identified with the gateway")
                await client.send("send_servers", {"guilds": 7, "guildMembers": 70, "cachedGuildMembers": 7})
            elif event.name == "GLOBAL_GUILD_COUNT":
                print(f"global: {event.data['guilds']} guilds, {event.data['guildMembers']} members")
                await client.close()
            elif event.type == EventType.ERROR:
                print(f"error {event.code}: {event.message}")
            elif event.type == EventType.CLOSED:
                print(f"closed with {event.code}" + (", reconnecting" if event.reconnect else ""))
            elif event.type == EventType.FATAL:
                print(f"fatal: {event.message}")
                return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} URL KEY [CA_FILE]", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)))
