"""Merging the single-process metrics of the hub and every actor into one exposition."""

from pipeline.app.cluster.metrics import merge_texts
from pipeline.app.prometheus import MetricsText


def _text(watch: str, looks: int) -> str:
    t = MetricsText()
    t.add("lookout_up", "gauge", "1 while the pipeline runs.", [({}, 1)])
    t.add("lookout_watch_looks_total", "counter", "Looks.", [({"watch": watch}, looks)])
    t.add("lookout_mqtt_connected", "gauge", "1 while connected.", [({}, 1)])
    return t.render()


def test_one_family_header_samples_of_every_part_labelled_by_node_and_group() -> None:
    merged = merge_texts(
        [({"node": "n1", "group": "g1"}, _text("a", 3)), ({"node": "n2", "group": "g2"}, _text("b", 5))],
        skip=["lookout_up"],
    )  # fmt: skip
    lines = merged.splitlines()
    assert lines.count("# TYPE lookout_watch_looks_total counter") == 1
    assert 'lookout_watch_looks_total{node="n1",group="g1",watch="a"} 3' in lines
    assert 'lookout_watch_looks_total{node="n2",group="g2",watch="b"} 5' in lines
    assert 'lookout_mqtt_connected{node="n2",group="g2"} 1' in lines
    assert not any(line.startswith("lookout_up") or "lookout_up " in line for line in lines)
    assert merge_texts([]) == ""
