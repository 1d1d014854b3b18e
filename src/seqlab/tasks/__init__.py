"""End-to-end tasks behind `seqlab <task> ...`; each module registers its own sub-commands."""
