"""The attribution stage: user-keyed events in, account-keyed events out, once.

:mod:`.stage` reads ``milepost.events`` in a consumer group of its own, keeps who belongs
to which account (:mod:`.repository`, rules in :mod:`shared.identity`) and publishes each
event it can place in an account once on ``milepost.accounts.events``, which the engine and
scoring read. It runs in the engine's process (``milepost engine``) and in embedded mode.
"""
