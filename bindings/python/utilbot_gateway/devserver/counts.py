"""Server counts: what one bot reports with `send_servers`, and their sum over the connected,
identified bots (the `GLOBAL_GUILD_COUNT` event).

The fields of `send_servers` are not documented. Accepted here (anything else is ignored):

    guilds              a non-negative integer, or an array (its length counts)
    guildMembers        a non-negative integer (alias: users; guildMembers wins if both are given)
    cachedGuildMembers  a non-negative integer (alias: cachedUsers; likewise)

A field that is absent (or null) counts 0. A field of the wrong type is a 4005 error listing
each bad field with its value. Each report replaces the bot's previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

from .protocol import MALFORMED_DATA, GatewayError


@dataclass(frozen=True)
class ServerCounts:
    guilds: int = 0
    guild_members: int = 0
    cached_guild_members: int = 0

    def __add__(self, other: ServerCounts) -> ServerCounts:
        return ServerCounts(
            self.guilds + other.guilds,
            self.guild_members + other.guild_members,
            self.cached_guild_members + other.cached_guild_members,
        )

    def as_event_data(self) -> dict[str, int]:
        """The `d` of GLOBAL_GUILD_COUNT, in the documented field order."""
        return {
            "guilds": self.guilds,
            "guildMembers": self.guild_members,
            "cachedGuildMembers": self.cached_guild_members,
        }


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def parse_report(data: dict[str, Any] | None) -> ServerCounts:
    """The counts of a send_servers event's data. Raises 4005 when `d` is missing or a known
    field has the wrong type."""
    if data is None:
        raise GatewayError(MALFORMED_DATA, errors=["Data not provided."], data=[None])
    errors: list[str] = []
    offending: list[Any] = []

    guilds_value = data.get("guilds")
    guilds = 0
    if isinstance(guilds_value, list):
        guilds = len(guilds_value)
    elif _is_count(guilds_value):
        guilds = guilds_value
    elif guilds_value is not None:
        errors.append("guilds must be a non-negative integer or an array.")
        offending.append(guilds_value)

    def count(names: tuple[str, str]) -> int:
        for name in names:
            value = data.get(name)
            if value is None:
                continue
            if _is_count(value):
                return value
            errors.append(f"{name} must be a non-negative integer.")
            offending.append(value)
            return 0
        return 0

    members = count(("guildMembers", "users"))
    cached = count(("cachedGuildMembers", "cachedUsers"))
    if errors:
        raise GatewayError(MALFORMED_DATA, errors=errors, data=offending)
    return ServerCounts(guilds, members, cached)


class Aggregate:
    """The latest report of each bot (keyed by its connection) and their sum."""

    def __init__(self) -> None:
        self._reports: dict[Hashable, ServerCounts] = {}

    def report(self, bot: Hashable, counts: ServerCounts) -> None:
        self._reports[bot] = counts

    def remove(self, bot: Hashable) -> bool:
        """Drops a bot's share; True when it had reported."""
        return self._reports.pop(bot, None) is not None

    def total(self) -> ServerCounts:
        total = ServerCounts()
        for counts in self._reports.values():
            total = total + counts
        return total

    def __len__(self) -> int:
        return len(self._reports)
