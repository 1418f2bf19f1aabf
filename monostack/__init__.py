"""monostack: one git repo, many Databricks MLOps Stacks projects.

The package holds all the logic; ``tasks.py`` at the repo root is a thin Invoke layer over it.
Modules import their heavy dependencies lazily so that ``invoke --list`` stays fast.
"""

__version__ = "0.1.0"
