"""Inputs and outputs: finding and reading inputs (`sources`), writing record shards atomically (`writer`),
and the output store, a local folder or any fsspec URL (`store`). Never imports the run state."""
