"""The scoring consumer: decode, attribute, fold, score, persist, publish, commit."""
