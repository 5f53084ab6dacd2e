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
