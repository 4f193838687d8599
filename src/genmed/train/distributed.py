"""Process-group setup for `torchrun` launches (torch.distributed; nothing home-made).

`torchrun --nproc_per_node N -m genmed train ...` sets RANK, LOCAL_RANK and WORLD_SIZE; when
WORLD_SIZE > 1 each process joins the default group (gloo on CPU, nccl on CUDA) and the engine
wraps the model in `DistributedDataParallel`, which averages gradients over processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Topology:
    """Where this process sits in the run."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1
    owns_group: bool = False  # True if this module created the process group

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, samples and checkpoints."""
        return self.rank == 0


def init_from_env(device_type: str) -> Topology:
    """Join the process group described by torchrun's environment (if WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Topology()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        owns = True
    return Topology(rank=rank, local_rank=local_rank, world=world, owns_group=owns)


def local_rank_from_env() -> int:
    """LOCAL_RANK (0 outside torchrun): which GPU this process drives."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def gather_objects(obj: object, topo: Topology) -> list[object]:
    """Every rank's `obj`, in rank order (just [obj] without DDP)."""
    if topo.world == 1:
        return [obj]
    out: list[object] = [None] * topo.world
    dist.all_gather_object(out, obj)
    return out


def agree(flag: bool, topo: Topology) -> bool:
    """Rank 0's `flag` on every rank (a decision all ranks must share, e.g. a wall-clock one)."""
    if topo.world == 1:
        return flag
    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def shutdown(topo: Topology, finished: bool = False) -> None:
    """Leave the process group if this module created it.

    After a finished run every rank first waits for the others (a barrier): a rank that tears
    its gloo pairs down while a peer still uses them can abort that peer (SIGABRT, seen with
    two torchrun nodes). After an error there is no barrier, since a failed rank never comes."""
    if topo.owns_group and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
