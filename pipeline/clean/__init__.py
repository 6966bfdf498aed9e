"""What the stages compute with: decoding bytes to text, telling HTML from a text dump, the two text-dump
cleaners (the hand-tuned heuristic and the learned model with its line features), the header reader (title,
byline, date, site from a dump) and language detection. Pure functions and read-only objects; imports only
`config`, `document`, `rules`, `vocabulary` and each other, never a stage, the run, the state or I/O."""
