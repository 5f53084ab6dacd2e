# Sourced by the experiment scripts: where the data is, and a check that it is there.
# SHARED (the datasets folder beside the repository by default), or DATA / SET5 / SET14 one by one.
SPSR="${SPSR:-spsr}"
SHARED="${SHARED:-$HERE/../../shared/datasets}"
DATA="${DATA:-$SHARED/train/SunHays80}"
SET5="${SET5:-$SHARED/benchmark/Set5/HR}"
SET14="${SET14:-$SHARED/benchmark/Set14/HR}"

require_datasets() {
  local need
  for need in "$DATA" "$SET5" "$SET14"; do
    [ -d "$need" ] || { echo "error: $need not found; set DATA, SET5 and SET14 (or SHARED) to your copies" >&2; exit 2; }
  done
}
