"""Playbooks: versioned YAML files mapping triggers x roles to channels, templates and tasks."""
