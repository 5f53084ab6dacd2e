"""Training's data workers: a worker that fails stops the stream within seconds with its one-line
reason, and one that hangs is given up on after the (generous) batch timeout; never a wait
without an end. The tests wait on what happens, never on how fast it happens."""

from __future__ import annotations

import os
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
        ("die", r"^a data worker failed: DataLoader worker \(pid"),
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
    """A FIFO with no writer blocks its reader for ever: a real hang in a decoding process."""
    from spsr.data.store import _decoded_in_order

    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    decoded = _decoded_in_order([(0, str(fifo), 2, 0)], workers=1, timeout_s=2)
    with pytest.raises(DataStoreError, match=r"took more than 2 s for one image"):
        next(decoded)


def test_training_on_a_damaged_compressed_store_with_workers_exits_with_one_line(tmp_path) -> None:
    """The field case: corrupt gzip chunks, read by two DataLoader workers. The command ends
    (within the hang guard, in practice seconds) with the store's one-line reason."""
    import subprocess

    import h5py
    from _hang_guard import HANG_GUARD_S
    from _train_fixtures import PYTHON, make_store, subprocess_env

    from spsr.data.store import StoreOptions, write_store

    plain = make_store(tmp_path / "data", val=0)
    store = tmp_path / "gz.h5"
    write_store(sorted(plain.parent.glob("*.png")), store,
                StoreOptions.make(scale=4, patch=32, step=16, compression="gzip"))
    with h5py.File(store) as f:
        chunks = [f["hr"].id.get_chunk_info(i) for i in range(f["hr"].id.get_num_chunks())]
    data = bytearray(store.read_bytes())
    for chunk in chunks:
        data[chunk.byte_offset + 10 : chunk.byte_offset + chunk.size - 4] = bytes(chunk.size - 14)
    store.write_bytes(bytes(data))
    proc = subprocess.run(
        [PYTHON, "-m", "spsr_cli.app", "pretrain-psnr", str(store), "-o", str(tmp_path / "run"),
         "--iterations", "5", "--nf", "8", "--nb", "1", "--set", "model.gc=4", "--batch-size", "2",
         "--amp", "off", "--no-channels-last", "--workers", "2", "--device", "cpu", "--quiet"],
        env=subprocess_env(), capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "damaged patch store" in line and "re-create it with spsr prepare-data" in line
