"""The monitoring loop: profiles, drift, outcomes, alerts."""
