-- Statements of quimbi_pipeline.db; %(name)s are bound parameters.

-- name: lock_batch
-- Held until COMMIT or ROLLBACK (also when the client dies): writers of a batch queue up.
SELECT pg_advisory_xact_lock(%(lock_key)s)

-- name: create_stage
-- A per-transaction staging table shaped like customer_profiles, dropped at commit. Its rows
-- are not compressed (toast_tuple_target): they live for one statement, and compressing the
-- JSON made COPY twice as expensive.
CREATE TEMP TABLE customer_profiles_stage
    (LIKE customer_profiles INCLUDING DEFAULTS)
    WITH (toast_tuple_target = 8160)
    ON COMMIT DROP

-- name: upsert
-- Upsert one batch from the staging table. Unchanged rows are not rewritten, so a rerun on
-- the same data changes nothing (not even last_updated); created_at is never overwritten.
INSERT INTO customer_profiles AS p (
    customer_id, store_id, segment_memberships, dominant_segments, membership_strengths,
    fuzzy_memberships, archetype_id, overall_confidence, lifetime_value, total_orders,
    avg_order_value, days_since_last_purchase, customer_tenure_days, churn_risk_score,
    segmentation_status, status_reason, customer_batch, model_version
)
SELECT customer_id, store_id, segment_memberships, dominant_segments, membership_strengths,
       fuzzy_memberships, archetype_id, overall_confidence, lifetime_value, total_orders,
       avg_order_value, days_since_last_purchase, customer_tenure_days, churn_risk_score,
       segmentation_status, status_reason, customer_batch, model_version
FROM customer_profiles_stage
ON CONFLICT (customer_id) DO UPDATE SET
    store_id = EXCLUDED.store_id,
    segment_memberships = EXCLUDED.segment_memberships,
    dominant_segments = EXCLUDED.dominant_segments,
    membership_strengths = EXCLUDED.membership_strengths,
    fuzzy_memberships = EXCLUDED.fuzzy_memberships,
    archetype_id = EXCLUDED.archetype_id,
    overall_confidence = EXCLUDED.overall_confidence,
    lifetime_value = EXCLUDED.lifetime_value,
    total_orders = EXCLUDED.total_orders,
    avg_order_value = EXCLUDED.avg_order_value,
    days_since_last_purchase = EXCLUDED.days_since_last_purchase,
    customer_tenure_days = EXCLUDED.customer_tenure_days,
    churn_risk_score = EXCLUDED.churn_risk_score,
    segmentation_status = EXCLUDED.segmentation_status,
    status_reason = EXCLUDED.status_reason,
    customer_batch = EXCLUDED.customer_batch,
    model_version = EXCLUDED.model_version,
    last_updated = now()
WHERE (p.store_id, p.segment_memberships, p.dominant_segments, p.membership_strengths,
       p.fuzzy_memberships, p.archetype_id, p.overall_confidence, p.lifetime_value,
       p.total_orders, p.avg_order_value, p.days_since_last_purchase, p.customer_tenure_days,
       p.churn_risk_score, p.segmentation_status, p.status_reason, p.customer_batch,
       p.model_version)
      IS DISTINCT FROM
      (EXCLUDED.store_id, EXCLUDED.segment_memberships, EXCLUDED.dominant_segments,
       EXCLUDED.membership_strengths, EXCLUDED.fuzzy_memberships, EXCLUDED.archetype_id,
       EXCLUDED.overall_confidence, EXCLUDED.lifetime_value, EXCLUDED.total_orders,
       EXCLUDED.avg_order_value, EXCLUDED.days_since_last_purchase,
       EXCLUDED.customer_tenure_days, EXCLUDED.churn_risk_score, EXCLUDED.segmentation_status,
       EXCLUDED.status_reason, EXCLUDED.customer_batch, EXCLUDED.model_version)

-- name: prune
-- Customers of this batch that no longer exist in the data (their drop was removed).
DELETE FROM customer_profiles p
WHERE p.customer_batch = %(batch)s
  AND NOT EXISTS (SELECT 1 FROM customer_profiles_stage s WHERE s.customer_id = p.customer_id)
