"""Mobile (H5) survey pages: server-rendered templates and their stylesheet."""
