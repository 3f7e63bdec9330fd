"""What the browser-facing parts of the services share."""
