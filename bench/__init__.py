"""kerasserve's benchmark: raw limits, a front-end ceiling, plain baselines and kerasserve, one run.

`python -m bench` runs it (`--help` for the knobs, `--targets` for a subset, `--quick` for a
smoke run). Results go to `bench/results/latest.{json,md,png}`, the full tables between
`<!-- bench:start -->` and `<!-- bench:end -->` in docs/benchmark.md, a short table in the
README.
"""
