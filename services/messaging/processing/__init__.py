"""The trigger worker: triggers in, planned deliveries and tasks out."""
