"""Run Debian's torchrun (torch 1.13) with one function corrected.

torch 1.13's Std.from_str turns "3" into a Std by iterating over the
IntFlag; on Python 3.11 iteration skips composite members such as
Std.ALL (3), so `--tee 3` / `--redirects 3` fail while parsing. This
wrapper replaces that parser with one that builds the flag from the
number directly, then runs torchrun unchanged. Used by the benchmarks only.
"""
import re
import sys

from torch.distributed.elastic.multiprocessing import api


def _std_from_str(vm):
    """'3' -> Std(3); '0:1,1:2' -> {0: Std(1), 1: Std(2)}."""
    if re.fullmatch(r"[0-3]", vm):
        return api.Std(int(vm))
    if re.fullmatch(r"(\d:[0-3],)*\d:[0-3]", vm):
        return {int(k): api.Std(int(v))
                for k, v in (item.split(":") for item in vm.split(","))}
    raise ValueError("%s is not 0-3 or a mapping like 0:1,1:2" % vm)


api.Std.from_str = staticmethod(_std_from_str)

from torch.distributed.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
