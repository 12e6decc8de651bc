"""`dataloader discover`: read a source's catalog and propose one control row per table.

`catalog` (the shapes every dialect's catalog module returns), one `catalog_<dialect>` module per
source type, `proposal` (the rules that turn a catalog table into a strategy), `settings` (the
thresholds), `inserts` (the INSERT text and applying it) and `command` (the CLI).
"""
