"""Dagster wiring, one folder per domain."""

import warnings

import dagster as dg

# BackfillPolicy is marked beta in Dagster 1.13, yet single-run backfills of drops, customer
# batches and snapshot weeks are how this project meets its speed targets; the pinned version
# is tested, so its beta notice is noise on every load.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
