"""The raw journal: lossless lines, tags, and recovery from a truncated last gzip member."""

import gzip

from qfreplay.capture.journal import JournalWriter, read_header, read_journal


def test_round_trip_of_frames_rest_answers_and_notes(tmp_path):
    j = JournalWriter(tmp_path, "binance", {"venue": "binance", "symbols": ["BTC-USDT"], "session": "s1"})
    j.note(1_000, "connect", {"conn": 1, "url": "ws://x"})
    j.frame(1_001, '{"a":1}')
    j.frame(1_002, "@looks like a tag")
    j.frame(1_003, "two\nlines")
    j.frame(1_004, b"\x00\x01")
    j.rest(1_005, {"conn": 1, "symbol": "BTCUSDT", "kind": "depth", "status": 200}, b'{"lastUpdateId":1,\n"bids":[],"asks":[]}')
    j.flush()
    j.frame(1_006, '{"b":2}')
    j.close()

    (path,) = j.files
    recs = list(read_journal(path))

    assert path.name.endswith(".gz") and path.parent.name == "date=1970-01-01"
    assert [(r.ts, r.tag) for r in recs] == [(1_000, "session"), (1_000, "connect"), (1_001, ""), (1_002, ""), (1_003, ""), (1_004, "binary"), (1_005, "rest"), (1_006, "")]
    assert [r.payload for r in recs[2:6]] == [b'{"a":1}', b"@looks like a tag", b"two\nlines", b"\x00\x01"]
    assert recs[6].meta["symbol"] == "BTCUSDT" and recs[6].payload == b'{"lastUpdateId":1,\n"bids":[],"asks":[]}'
    assert read_header(path).meta["session"] == "s1"


def test_truncated_last_member_keeps_everything_before_it(tmp_path):
    j = JournalWriter(tmp_path, "coinbase", {"venue": "coinbase"})
    for i in range(100):
        j.frame(10 + i, f'{{"n":{i}}}')
    j.flush()
    for i in range(100, 200):
        j.frame(10 + i, f'{{"n":{i}}}' * 50)
    j.flush()
    part = next(tmp_path.rglob("*.gz.part"))  # killed before close: still the .part name
    data = part.read_bytes()
    part.write_bytes(data[: len(data) - 40])

    recs = [r for r in read_journal(part) if r.tag == ""]

    assert 100 <= len(recs) < 200
    assert recs[99].payload == b'{"n":99}'
    assert all(r.payload.endswith(b"}") for r in recs)


def test_hftbacktest_plain_gzip_lines(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'1 {"stream":"a","data":{}}\n2 {"lastUpdateId":5,"bids":[],"asks":[]}\n')

    recs = list(read_journal(path))

    assert [(r.ts, r.tag, r.payload[:8]) for r in recs] == [(1, "", b'{"stream'), (2, "", b'{"lastUp')]
    assert read_header(path) is None
