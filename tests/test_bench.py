"""The benchmark report runs end to end (tiny sizes; the registry's cases at
their smallest size) and writes what it promises."""
import json

import pytest

import fastrelu
from fastrelu import _bench
from fastrelu._registry import OPS


def test_report_json_and_table(tmp_path, capsys):
    """Small sizes: the relu cases, in the table and the JSON; the other
    operations of the registry are timed only from REGISTRY_MIN_SIZE on."""
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", "10,1000", "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for op in _bench.BASE_OPS:
        assert op in out
    assert "vs numpy" in out and "kernel path" in out
    data = json.loads(path.read_text())
    rows = data["results"]
    assert {r["op"] for r in rows} == set(_bench.BASE_OPS)
    for r in rows:
        assert r["times"]["fastrelu"] > 0 and r["times"]["numpy"] > 0
    assert data["machine"]["versions"]["numpy"]


def test_every_registry_op_is_benchmarked(tmp_path, capsys):
    """Every operation of the registry has its case, timed at REGISTRY_MIN_SIZE."""
    assert set(_bench.REGISTRY_OPS) | {"relu out="} == {f"{op.name} out=" for op in OPS}
    path = tmp_path / "r.json"
    assert fastrelu.bench(["--sizes", str(_bench.REGISTRY_MIN_SIZE), "--ops",
                           ",".join(_bench.REGISTRY_OPS), "--batches", "1", "--no-progress",
                           "--json", str(path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(path.read_text())["results"]
    assert {r["op"] for r in rows} == set(_bench.REGISTRY_OPS)
    for op in _bench.REGISTRY_OPS:
        assert op in out
    for r in rows:
        assert r["times"]["fastrelu"] > 0 and r["times"]["numpy"] > 0


def test_report_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "r.png"
    assert fastrelu.bench(["--sizes", "10,1000", "--ops", "relu", "--batches", "1",
                           "--no-progress", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_op_is_an_error():
    with pytest.raises(SystemExit):
        fastrelu.bench(["--ops", "nonsense"])
