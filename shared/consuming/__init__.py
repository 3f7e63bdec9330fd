"""The at-least-once toolkit of the fenced consumers (engine, scoring, messaging).

A member keeps each input partition's applied offset in the same transaction as the state
it produced, fenced against another member having moved it (:mod:`.offsets`); outgoing
records wait in an outbox table from that transaction until the bus acknowledges them
(:mod:`.outbox`); a malformed record becomes a dead letter (:mod:`.dead_letters`).
:class:`.member.FencedMember` holds one member's bookkeeping between those steps, and
:mod:`.metrics` makes the lag and retry metrics each consumer reports. What a batch
applies, and the order its checkpoint spells out, stay with each service.
"""
