"""The control-centre dashboard: static HTML, CSS and JavaScript (no build step, no CDN)."""
