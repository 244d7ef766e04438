"""The command journal on Redis Streams: submitting commands, the engine service, snapshots and recovery.

- ``submit``: :class:`Submitter` (gateways, asyncio) and :func:`submit_sync` (``tradewire admin``)
  journal a command and wait for its outcome;
- ``streams``: :func:`iter_journal`, :func:`iter_events` and :func:`export_commands` read the
  journal back (``tradewire replay``, the audit);
- ``archive``: ``tradewire journal archive`` moves the entries a snapshot covers out of Redis into
  segment files, which the audit reads back;
- ``service``: ``tradewire engine``; ``core`` (pure), ``recovery``, ``render`` (pure), ``wire``;
  ``lease``: one engine per Redis, the others stand by.
"""

from tradewire.journal.entries import Reply
from tradewire.journal.streams import export_commands, iter_events, iter_journal
from tradewire.journal.submit import SubmitError, Submitter, SubmitTimeout, SubmitUnknown, submit_sync

__all__ = [
    "Reply",
    "SubmitError",
    "SubmitTimeout",
    "SubmitUnknown",
    "Submitter",
    "export_commands",
    "iter_events",
    "iter_journal",
    "submit_sync",
]
