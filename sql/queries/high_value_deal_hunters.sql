-- High-value deal hunters: top-20% lifetime value whose price-sensitivity memberships are mostly
-- in discount-driven segments. Segment names are built from the axis's feature words
-- (quimbi_pipeline/core/axes.py: deal_hunter, big_saver, deep_discount_seeker, discount_driven;
-- "typical_..._higher_<discount feature>" for a segment that is relatively more discounted),
-- so the pattern matches every segment that means "buys on discount", whatever the fit chose.
-- Summing fuzzy memberships keeps customers whose discount behaviour spans two such segments.
WITH value_cut AS (
    SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY lifetime_value) AS p80
    FROM customer_profiles
    WHERE segmentation_status = 'segmented'
),
deal AS (
    SELECT p.customer_id, sum(m.membership::numeric) AS deal_membership
    FROM customer_profiles p,
         jsonb_each_text(p.fuzzy_memberships -> 'price_sensitivity') AS m(segment, membership)
    WHERE m.segment ~ ('(deal_hunter|big_saver|deep_discount_seeker|discount_driven'
                       '|higher_(discounted_order_share|mean_discount_per_order|discount_depth'
                       '|discount_share_of_spend))')
    GROUP BY p.customer_id
)
SELECT p.customer_id,
       round(p.lifetime_value::numeric, 2)           AS lifetime_value,
       p.total_orders,
       p.dominant_segments ->> 'price_sensitivity'   AS price_sensitivity,
       round(deal.deal_membership, 3)                AS deal_membership
FROM customer_profiles p
JOIN deal USING (customer_id)
CROSS JOIN value_cut
WHERE p.lifetime_value >= value_cut.p80
  AND deal.deal_membership >= 0.5
ORDER BY p.lifetime_value DESC, p.customer_id
LIMIT 100;
