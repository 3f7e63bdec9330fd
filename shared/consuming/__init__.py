"""The exactly-once stream runtime of the fenced consumers (engine, scoring, messaging).

:mod:`.stream` runs a service's handler as a pipeline (decode, admit, sift, load, apply,
checkpoint) and states the checkpoint order once. A member keeps each input partition's
applied offset in the same transaction as the state it produced, fenced against another
member having moved it (:mod:`.offsets`); outgoing records wait in an outbox table from
that transaction until the bus acknowledges them (:mod:`.outbox`); a malformed record
becomes a dead letter (:mod:`.dead_letters`). :class:`.member.FencedMember` holds one
member's bookkeeping between those steps, and :mod:`.metrics` makes the lag and retry
metrics each consumer reports.
"""
