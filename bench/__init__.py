"""kerasserve's benchmark: raw model limit, the seed's Flask server and kerasserve, one run.

`python -m bench` runs it (`--help` for the knobs; `--quick` for a smoke run). Results go to
`bench/results/latest.{json,md,png}` and, between `<!-- bench:start -->` and
`<!-- bench:end -->`, into the README.
"""
