"""The stages, one contract (`base.Stage`), and the chains of the two input kinds, declared in one place
(`chain.chains`); `runner.Pipeline` takes one page through its chain."""
