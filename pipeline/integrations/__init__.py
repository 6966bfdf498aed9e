"""pagewash inside other pipelines: `datatrove` (a datatrove step, `pip install 'pagewash[datatrove]'`).
May import the API (`pipeline.api`) and the schema; nothing imports this package."""
