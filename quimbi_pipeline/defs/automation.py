"""Declarative automation: new data flows downstream without a schedule of its own."""

import dagster as dg

# orders/tickets, customer_features, segment_assignments, customer_profiles and archetypes
# carry AutomationCondition.eager(): a new drop or a monthly re-fit updates them in turn.
# Declared explicitly so that it is on by default in every deployment.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "pipeline_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
