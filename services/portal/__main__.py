"""``python -m services.portal``: serve the portal (what ``ttp up`` starts)."""

from services.portal.serve import serve

serve()
