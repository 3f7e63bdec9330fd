"""Tasks for account owners: due dates, escalation, and the push to the CRM."""
