"""One library function per pipeline stage: what a flow's task calls (flows stay thin)."""
