"""The scoring statements send their arrays as text literals (`fraudsvc.db.literals`);
PostgreSQL reads each back as exactly the list it was made from: text whatever it holds (a
customer id or a device id is the caller's string: quotes, backslashes, commas, braces, spaces,
"NULL", non-ASCII), and every double bit for bit (a stored feature vector is the one scored)."""

from __future__ import annotations

import math
import random
import struct

import asyncpg

from fraudsvc.db.literals import bool_array, float_array, int_array, text_array

NASTY = ['a"b', "a\\b", "a,b", "{a}", " a ", "NULL", "null", "", "é☃", '\\"', "a'b", "}{", "\t"]


def word(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(NASTY)
    alphabet = "ab,{}\"\\ \tNUL'é☃\n"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))


def double(rng: random.Random) -> float:
    special = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308, 0.1]
    if rng.random() < 0.3:
        return rng.choice(special)
    if rng.random() < 0.5:
        return float(rng.randrange(-1000, 1000))
    value: float = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
    return value  # any bit pattern


def bits(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) if not math.isnan(v) else b"nan" for v in values]


async def test_postgresql_reads_each_literal_as_its_list(database_url: str) -> None:
    rng = random.Random(7)
    connection = await asyncpg.connect(database_url)
    try:
        for _ in range(300):
            words = [word(rng) for _ in range(rng.randrange(30))]
            numbers = [rng.randrange(-(2**63), 2**63) for _ in range(rng.randrange(60))]
            flags = [rng.random() < 0.5 for _ in range(rng.randrange(30))]
            texts = await connection.fetchval("SELECT $1::text::text[]", text_array(words))
            assert list(texts) == words
            ints = await connection.fetchval("SELECT $1::text::int8[]", int_array(numbers))
            assert list(ints) == numbers
            bools = await connection.fetchval("SELECT $1::text::bool[]", bool_array(flags))
            assert list(bools) == flags
            doubles = [double(rng) for _ in range(rng.randrange(60))]
            floats = await connection.fetchval("SELECT $1::text::float8[]", float_array(doubles))
            assert bits(list(floats)) == bits(doubles)
    finally:
        await connection.close()
