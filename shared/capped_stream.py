"""A Redis Stream whose size is bounded in items (listings, prices), not in entries.

An entry may hold one item or ten thousand, so XADD's MAXLEN (a count of entries) bounds
nothing: 100 batch requests filled 512 MiB. Here each entry says how many items it holds, a
counter beside the stream holds their sum, and an append that would take the sum past the cap
is refused (the writer drops and counts it) instead of trimming entries no one has drained.
The drainer removes what it has drained and lowers the counter in the same transaction
(`release`).

An append is a Lua script, so the check and the writes are one step for every gateway process,
and it is idempotent: a writer whose reply was lost (Redis frozen past the socket's timeout,
then back) sends the same append again under the same id, and the script answers what it did
the first time instead of writing the entries twice.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from redis import Redis
from redis.client import Pipeline

COUNT_FIELD = "items"  # each entry's item count, read back by `release`
# How long an append's id is remembered: a writer sends an append again only right after a
# lost reply, once Redis answers. Each id is a key outside the stream's cap (about 100 bytes;
# a gateway process appends up to 20 times a second), so not an hour of them.
APPEND_ID_SECONDS = 300

_APPEND = """
-- ARGV[3] holds the entries as netstrings ("<length>:<bytes>"): an entry's item count, then
-- its fields, themselves netstrings of names and values in turn.
local function netstring(text, from)
  local colon = string.find(text, ':', from, true)
  local length = tonumber(string.sub(text, from, colon - 1))
  return string.sub(text, colon + 1, colon + length), colon + length + 1
end
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local cap, held = tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[2]) or '0')
local entries, at, written = ARGV[3], 1, 0
while at <= #entries do
  local count, packed
  count, at = netstring(entries, at)
  packed, at = netstring(entries, at)
  if held + written + tonumber(count) > cap then break end
  local fields, from = {'items', count}, 1
  while from <= #packed do
    fields[#fields + 1], from = netstring(packed, from)
  end
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  written = written + tonumber(count)
end
if written > 0 then redis.call('INCRBY', KEYS[2], written) end
redis.call('SET', KEYS[3], written, 'EX', ARGV[2])
return written
"""


@dataclass(frozen=True)
class Item:
    """One entry to append: how many items it holds, and its fields."""

    count: int
    fields: Mapping[str, str | bytes]

    @cached_property
    def packed(self) -> bytes:
        """The entry as the append script reads it: its count, then its fields, each a
        netstring. An append sends its entries' bytes joined as one argument, not one per
        field: redis-py encodes a command argument by argument in Python, which a writer
        thread does under the interpreter's lock while requests wait for it (a caller may
        pack an item early, as the gateway does while answering)."""
        fields = b"".join(
            _netstring(text) for name, value in self.fields.items() for text in (name, value)
        )
        return _netstring(str(self.count)) + _netstring(fields)


def _netstring(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return b"%d:%s" % (len(data), data)


def count_key(stream: str) -> str:
    return f"{stream}:items"


class CappedStream:
    def __init__(self, redis: Redis, stream: str, cap: int) -> None:
        self.redis, self.stream, self.cap = redis, stream, cap
        self._append = redis.register_script(_APPEND)

    def append(self, append_id: str, entries: Sequence[Item]) -> int:
        """Append the entries in order while they fit under the cap; the items written (the
        entries after the first that did not fit are not). Sent again with the same
        append_id, writes nothing more and answers the same count."""
        packed = b"".join(entry.packed for entry in entries)
        keys = [self.stream, count_key(self.stream), f"{self.stream}:append:{append_id}"]
        return int(self._append(keys=keys, args=[self.cap, APPEND_ID_SECONDS, packed]))

    def mark_written(self, writer: str, until: float) -> None:
        """Say that every item `writer` (a process) was given before `until` (seconds since
        the epoch) is in the stream: what a reader needs before it may call a price's
        prediction unknown (written_until)."""
        self.redis.hset(written_until_key(self.stream), writer, f"{until:.3f}")

    def count_dropped(self, items: int) -> None:
        """Add to the items this stream's writers had to drop, kept beside it: a count that
        outlives the process that dropped them (a gateway's own counter restarts with it)."""
        self.redis.incrby(dropped_key(self.stream), items)

    def held(self) -> int:
        """Items in the stream now (by the counter)."""
        return int(self.redis.get(count_key(self.stream)) or 0)


def dropped_key(stream: str) -> str:
    return f"{stream}:dropped"


def written_until_key(stream: str) -> str:
    return f"{stream}:written-until"


def written_until(redis: Redis, stream: str, now: float, silent_seconds: float) -> float | None:
    """The time before which every writer has put in the stream all it was given: the oldest
    mark of the writers heard from within silent_seconds (None when none was). A writer
    silent longer is taken for gone (a process that ended), and forgotten."""
    marks = {
        writer: float(value) for writer, value in redis.hgetall(written_until_key(stream)).items()
    }
    gone = [writer for writer, mark in marks.items() if mark < now - silent_seconds]
    if gone:
        redis.hdel(written_until_key(stream), *gone)
    live = [mark for mark in marks.values() if mark >= now - silent_seconds]
    return min(live) if live else None


def items_of(fields: Mapping[bytes, bytes] | None) -> int:
    """The item count an entry was appended with (0 for one that does not say)."""
    try:
        return int((fields or {}).get(COUNT_FIELD.encode(), b"0"))
    except ValueError:
        return 0


def release(pipeline: Pipeline, stream: str, ids: Sequence[bytes], items: int) -> None:
    """Queue on a transaction: delete drained entries and take their items off the counter."""
    if ids:
        pipeline.xdel(stream, *ids)
    if items:
        pipeline.decrby(count_key(stream), items)


_RESET_IF_EMPTY = """
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('SET', KEYS[2], 0) end
"""


def reset_if_empty(redis: Redis, stream: str) -> None:
    """An empty stream holds no items, whatever the counter says (the stream was deleted by
    hand, or by a test): a counter left high would refuse every append."""
    redis.eval(_RESET_IF_EMPTY, 2, stream, count_key(stream))
