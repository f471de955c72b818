"""The monitoring loop: profiles, drift, outcomes, alerts and the retraining cooldown.

Every whylogs import goes through :mod:`riskops.monitoring.whylogs_compat` (numpy 2 alias);
import the modules themselves (``riskops.monitoring.drift``, ``.profiles``, ``.store``), so that
the cooldown or the Slack receiver does not load whylogs.
"""
