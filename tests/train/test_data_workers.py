"""Training's data workers: a worker that fails stops the stream within seconds with its one-line
reason, and one that hangs is given up on after the (generous) batch timeout; never a wait
without an end. The tests wait on what happens, never on how fast it happens."""

from __future__ import annotations

import os
import re
import time

import pytest
import torch
from torch.utils.data import Dataset

from spsr.errors import DataStoreError
from spsr.train.batches import BatchStream


class _Failing(Dataset):
    """Items load fine except ``bad``, whose read fails in the way ``how`` says."""

    def __init__(self, how: str, bad: int = 3) -> None:
        self.how, self.bad = how, bad

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index == self.bad:
            if self.how == "raise":
                raise DataStoreError("/data/x.h5: damaged patch store: patch 3 cannot be read")
            if self.how == "oserror":
                raise OSError(5, "Input/output error")
            if self.how == "die":
                os._exit(3)
            if self.how == "hang":
                time.sleep(3600)
        return {"lr": torch.full((3, 2, 2), float(index))}


def _drain(stream: BatchStream) -> None:
    for _ in range(2 * stream.batches_per_epoch):
        next(stream)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("raise", r"^/data/x\.h5: damaged patch store: patch 3 cannot be read$"),
        ("oserror", r"^a data worker failed: .*Input/output error"),
        ("die", r"^a data worker failed: DataLoader worker (\(pid|ended while handing over)"),
    ],
)
def test_a_failing_worker_stops_the_stream_with_its_reason(how: str, message: str) -> None:
    from spsr.errors import user_message

    stream = BatchStream(_Failing(how), 2, seed=1, workers=2, timeout_s=600)
    with pytest.raises((DataStoreError, RuntimeError)) as info:
        _drain(stream)
    assert isinstance(info.value, DataStoreError), info.value
    import re

    assert re.search(message, user_message(info.value)), user_message(info.value)
    assert stream._iterator is None  # the workers were shut down before the error left


def test_a_hanging_worker_is_given_up_on_after_the_timeout() -> None:
    stream = BatchStream(_Failing("hang"), 2, seed=1, workers=1, timeout_s=3)
    with pytest.raises(DataStoreError, match=r"no batch from the 1 data worker process\(es\) in 3 s"):
        _drain(stream)
    assert stream._iterator is None


def test_a_hanging_decoder_of_prepare_data_is_killed_after_the_timeout(tmp_path) -> None:
    """A FIFO with no writer blocks its reader for ever: a real hang in a decoding process. Run in
    a process of its own, as prepare-data is: the decoding pool it kills forks and ends processes,
    which is no state to leave in the test runner's process for the tests after it."""
    import subprocess
    import sys

    from _hang_guard import HANG_GUARD_S
    from _train_fixtures import subprocess_env

    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    script = (
        "import sys\n"
        "from spsr.data.store import _decoded_in_order\n"
        "from spsr.errors import DataStoreError\n"
        "decoded = _decoded_in_order([(0, sys.argv[1], 2, 0)], workers=1, timeout_s=2)\n"
        "try:\n"
        "    next(decoded)\n"
        "except DataStoreError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(fifo)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"took more than 2 s for one image", proc.stdout), proc.stdout + proc.stderr


def test_training_on_a_damaged_compressed_store_with_workers_exits_with_one_line(tmp_path) -> None:
    """The field case: corrupt gzip chunks, read by two DataLoader workers. The command ends
    (within the hang guard, in practice seconds) with the store's one-line reason."""
    import subprocess
    from pathlib import Path

    from _hang_guard import HANG_GUARD_S
    from _train_fixtures import PYTHON, subprocess_env

    # The store is made and damaged in a process of its own (prepare-data's decoding pool forks).
    make = (
        "import sys\n"
        "from pathlib import Path\n"
        "import h5py\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from _train_fixtures import make_store\n"
        "from spsr.data.store import StoreOptions, write_store\n"
        "plain, store = make_store(Path(sys.argv[1]), val=0), Path(sys.argv[2])\n"
        "write_store(sorted(plain.parent.glob('*.png')), store,\n"
        "            StoreOptions.make(scale=4, patch=32, step=16, compression='gzip'))\n"
        "with h5py.File(store) as f:\n"
        "    chunks = [f['hr'].id.get_chunk_info(i) for i in range(f['hr'].id.get_num_chunks())]\n"
        "data = bytearray(store.read_bytes())\n"
        "for c in chunks:\n"
        "    data[c.byte_offset + 10 : c.byte_offset + c.size - 4] = bytes(c.size - 14)\n"
        "store.write_bytes(bytes(data))\n"
    )
    store = tmp_path / "gz.h5"
    made = subprocess.run([PYTHON, "-c", make, str(tmp_path / "data"), str(store),
                           str(Path(__file__).resolve().parents[1])], env=subprocess_env(), capture_output=True,
                          text=True, timeout=HANG_GUARD_S, check=False)
    assert made.returncode == 0 and store.is_file(), made.stderr
    proc = subprocess.run(
        [PYTHON, "-m", "spsr_cli.app", "pretrain-psnr", str(store), "-o", str(tmp_path / "run"),
         "--iterations", "5", "--nf", "8", "--nb", "1", "--set", "model.gc=4", "--batch-size", "2",
         "--amp", "off", "--no-channels-last", "--workers", "2", "--device", "cpu", "--quiet"],
        env=subprocess_env(), capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "damaged patch store" in line and "re-create it with spsr prepare-data" in line


def test_no_asynchronous_worker_errors_are_left_behind() -> None:
    """PyTorch's SIGCHLD handler would raise "worker killed" wherever the main thread is when any
    child ends (it crashed the test runner inside unrelated native code); a stream leaves the
    default handling, and a dead worker is still found, synchronously, by the stream."""
    import signal

    stream = BatchStream(_Failing("raise", bad=99), 2, seed=1, workers=2, timeout_s=600)  # no bad item
    next(stream)
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    stream.close()
