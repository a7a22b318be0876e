"""One rank of the demo mesh: print, logging, stderr and a C child."""
import logging
import os
import subprocess
import sys
import time

rank = int(os.environ.get("RANK", "0"))
logging.basicConfig(level=logging.INFO,
                    format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("train")

print(f"rank {rank} of {os.environ.get('WORLD_SIZE')} starting")
for step in range(0, 300, 100):
    loss = 2.5 / (1 + step / 100) + rank * 0.01
    print(f"step {step} loss={loss:.3f}")
    log.info("checkpoint saved at step %d", step)
    time.sleep(0.05)
if rank == 3:
    log.warning("rank 3 is slow: %.1f s behind", 1.5)
print("a line on stderr", file=sys.stderr)
subprocess.run([os.environ["DEMO_PRINTF"], str(rank)], check=True)
print(f"rank {rank} done")
