"""A 4-rank DDP job (gloo) shaped like the ones users run: logging, a tqdm
bar per rank, per-rank eval values, and rank 2 raising at step 35 while
the others wait in a collective. Run under torchrun."""
import logging
import os
import time

import torch
import torch.distributed as dist
from tqdm import tqdm


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s train: %(message)s")
    print("rank %d/%d pid %d starting" % (rank, world, os.getpid()),
          flush=True)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = int(os.environ.get("JOB_STEPS", "60"))
    fail = int(os.environ.get("JOB_FAIL_STEP", "35"))
    bar = tqdm(total=steps, desc="rank%d" % rank, mininterval=0.1)
    for step in range(1, steps + 1):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.update(1)
        if step % 20 == 0:
            logging.info("eval step=%d acc=%.3f val_loss=0.1962", step,
                         0.6 + rank * 0.01)
        if rank == 2 and step == fail:
            raise RuntimeError("NaN at step %d" % step)
        time.sleep(0.02)
    bar.close()
    print("rank %d done" % rank, flush=True)


if __name__ == "__main__":
    main()
