"""The audit trail's tools: ``tradewire audit verify`` replays the journal and proves it reproduces the
recorded events, trades and balances; ``tradewire audit export`` writes trades and balance changes.

It reads the journal (``tradewire.journal``) and sits above it; the pure parts (``replay``,
``export``) take journal entries in and give findings and rows out, ``shell`` moves the bytes.
"""
