"""The ``romdask`` command line: one module per stage, each adding its subcommands.

========  ==========================================================================
module    commands
========  ==========================================================================
hifi      ``hifi`` (training runs of a reference problem, CalculiX or built-in)
store     ``ingest`` (users' result files -> snapshot store), ``info``, ``template``
offline   ``reduce`` (store -> reduced model, on a Dask cluster)
online    ``predict`` (a new case: a deck, cyclic values or amplitude tables),
          ``compare`` (a prediction against a high-fidelity run)
demo      ``demo`` (the whole pipeline on the reference plate)
========  ==========================================================================
"""

from romdask.cli.main import main

__all__ = ["main"]
