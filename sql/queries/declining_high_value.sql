-- Declining customers with high lifetime value: top-20% value whose loyalty trajectory is
-- mostly in fading segments (fading_loyalty, spend_falling, losing_momentum, overdue,
-- sporadic_buyer, or "typical_..._lower_<growth feature>"), or whose churn risk is high.
-- Ordered by value at stake.
WITH value_cut AS (
    SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY lifetime_value) AS p80
    FROM customer_profiles
    WHERE segmentation_status = 'segmented'
),
fading AS (
    SELECT p.customer_id, sum(m.membership::numeric) AS fading_membership
    FROM customer_profiles p,
         jsonb_each_text(p.fuzzy_memberships -> 'loyalty_trajectory') AS m(segment, membership)
    WHERE m.segment ~ ('(fading_loyalty|spend_falling|losing_momentum|overdue|sporadic_buyer'
                       '|lower_(order_trend|value_trend|recency_momentum|active_month_share)'
                       '|higher_overdue)')
    GROUP BY p.customer_id
)
SELECT p.customer_id,
       round(p.lifetime_value::numeric, 2)              AS lifetime_value,
       round(p.churn_risk_score::numeric, 3)            AS churn_risk,
       round(p.days_since_last_purchase::numeric, 1)    AS days_since_last_purchase,
       p.dominant_segments ->> 'loyalty_trajectory'     AS loyalty_trajectory,
       round(coalesce(f.fading_membership, 0), 3)       AS fading_membership
FROM customer_profiles p
LEFT JOIN fading f USING (customer_id)
CROSS JOIN value_cut
WHERE p.segmentation_status = 'segmented'
  AND p.lifetime_value >= value_cut.p80
  AND (p.churn_risk_score >= 0.5 OR f.fading_membership >= 0.5)
ORDER BY p.lifetime_value * p.churn_risk_score DESC, p.customer_id
LIMIT 100;
