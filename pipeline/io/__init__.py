"""Inputs and outputs: finding and reading inputs (`sources`; web archives in `warc`), writing record shards
atomically (`writer`), and the output store, a local folder or any fsspec URL (`store`).

May import `document`, `config`, `layout` and `clean.html_sniff`; never the state (`pipeline.state`), the stages,
the dedup engine or the run."""
