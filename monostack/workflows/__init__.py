"""``invoke sync-workflows``: every project's CI files, merged into the root CI folders.

GitHub and Azure DevOps only read CI files at the repo root. Sync copies each project's files
there (prefixed with the project name) plus the template's monorepo part, each behind a header
that marks it as generated and hashes its content, and refuses anything that would clash:
two sources for one file, a hand-written file in the way, duplicate workflow names or
concurrency groups, or a project workflow that reaches outside its own folder.

Modules: :mod:`.sources` (what goes where), :mod:`.header` (the managed-file marker),
:mod:`.rules` (conflict rules), :mod:`.plan` (plan, apply, the task and test-all's findings).
"""

from monostack.workflows.header import managed_file, parse_managed
from monostack.workflows.plan import (
    CHECK_NAME,
    Change,
    SyncPlan,
    SyncResult,
    apply_sync,
    plan_sync,
    sync_findings,
    sync_workflows,
)
from monostack.workflows.rules import Conflict
from monostack.workflows.sources import AZURE_DIR, GITHUB_DIR, root_name

__all__ = [
    "AZURE_DIR",
    "CHECK_NAME",
    "GITHUB_DIR",
    "Change",
    "Conflict",
    "SyncPlan",
    "SyncResult",
    "apply_sync",
    "managed_file",
    "parse_managed",
    "plan_sync",
    "root_name",
    "sync_findings",
    "sync_workflows",
]
