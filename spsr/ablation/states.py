"""The words of a plan and of its results (plain constants: importing them loads nothing)."""

# What the plan does with a configuration (:attr:`spsr.ablation.plan.PlannedRun.action`).
TRAIN = "train"  # a fresh run
RESUME = "resume"  # continue the run folder's saved state
EVALUATE = "evaluate"  # trained: only score it
REUSE = "reuse"  # trained and scored: nothing to do
UNAVAILABLE = "unavailable"  # the engine or the inputs cannot run it (a missing variant, --nse...)
CONFLICT = "conflict"  # its run folder holds another configuration

# What became of it (:attr:`spsr.ablation.runner.RowResult.status`).
OK = "ok"
FAILED = "failed"
INTERRUPTED = "interrupted"
NOT_RUN = "not run"
