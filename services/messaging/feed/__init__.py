"""The in-app feed: messages a product polls for one of its users."""
