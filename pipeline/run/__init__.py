"""A whole run: the frozen run context, the worker, shard assembly and commit, retraction of changed or gone
inputs, the dedup rounds' orchestration, the report and its memory probes."""
