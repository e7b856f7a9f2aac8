"""Which share of the prompts this process takes: rank and world size from torch.distributed.

Launched by ``torchrun`` or ``accelerate launch`` (both set RANK, WORLD_SIZE, MASTER_ADDR, ...), the process joins
the default process group (gloo on CPU, nccl on CUDA) and takes every world_size-th prompt from its rank; launched
plainly it is the only one. No scheduler of our own: torch.distributed's group is the only coordination.

>>> shard([0, 1, 2, 3, 4, 5, 6], rank=1, world_size=3)
[1, 4]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import InputError


@dataclass(frozen=True)
class Process:
    """This process in the run: ``rank`` of ``world_size``, and the device its model goes to."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    joined: bool = False  # True when this call initialised the process group (and so destroys it at the end)

    @property
    def device(self) -> str:
        """cuda:LOCAL_RANK when CUDA is there, else cpu."""
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def barrier(self) -> None:
        """Wait for every process (a no-op when alone)."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group if this process joined it."""
        if self.joined and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def current_process() -> Process:
    """This process: from an initialised default group, else from the launcher's environment (joining the group),
    else alone. InputError when the environment is half set (RANK without WORLD_SIZE, ...)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    names = ("RANK", "WORLD_SIZE")
    present = [n for n in names if n in os.environ]
    if not present:
        return Process()
    if len(present) != len(names):
        raise InputError(f"{present[0]} is set but {', '.join(n for n in names if n not in present)} is not; launch "
                         "with torchrun / accelerate launch, or unset it to run as one process.")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world == 1:
        return Process(rank, world, int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_available():
        raise InputError("WORLD_SIZE > 1 but this torch has no torch.distributed; run as one process.")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), joined=True)


def shard(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """The indices this rank takes: every world_size-th one, starting at rank (balanced to within one prompt)."""
    return list(indices[rank::world_size])
