-- High-value deal hunters: top-20% lifetime value whose price-sensitivity segment is
-- discount-driven. Segment names come from the axis vocabulary (quimbi_pipeline/core/axes.py).
WITH value_cut AS (
    SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY lifetime_value) AS p80
    FROM customer_profiles
    WHERE segmentation_status = 'segmented'
)
SELECT p.customer_id,
       round(p.lifetime_value::numeric, 2)                               AS lifetime_value,
       p.total_orders,
       p.dominant_segments ->> 'price_sensitivity'                       AS price_sensitivity,
       round((p.membership_strengths ->> 'price_sensitivity')::numeric, 3) AS strength
FROM customer_profiles p, value_cut
WHERE p.lifetime_value >= value_cut.p80
  AND p.dominant_segments ->> 'price_sensitivity'
      ~ '(deal_hunter|big_saver|deep_discount_seeker|discount_driven)'
ORDER BY p.lifetime_value DESC
LIMIT 100;
