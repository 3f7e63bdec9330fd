"""How a message leaves Milepost: one adapter per channel behind the ``Channel`` protocol."""
