-- Declining customers with high lifetime value: top-20% value whose loyalty trajectory is
-- fading or whose churn risk is high. Ordered by value at stake.
WITH value_cut AS (
    SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY lifetime_value) AS p80
    FROM customer_profiles
    WHERE segmentation_status = 'segmented'
)
SELECT p.customer_id,
       round(p.lifetime_value::numeric, 2)          AS lifetime_value,
       round(p.churn_risk_score::numeric, 3)        AS churn_risk,
       p.days_since_last_purchase,
       p.dominant_segments ->> 'loyalty_trajectory' AS loyalty_trajectory
FROM customer_profiles p, value_cut
WHERE p.lifetime_value >= value_cut.p80
  AND (p.churn_risk_score >= 0.5
       OR p.dominant_segments ->> 'loyalty_trajectory'
          ~ '(fading_loyalty|losing_momentum|at_risk|spend_falling|sporadic_buyer)')
ORDER BY p.lifetime_value * p.churn_risk_score DESC
LIMIT 100;
