"""The engine's consumer: decode, attribute, transition, persist, publish, commit."""
