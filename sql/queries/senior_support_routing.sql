-- Customers to route to senior support: most of their problem-complexity membership is in
-- segments whose names say complex (trouble_prone, complex_cases, escalation_prone,
-- many_issue_types, money_issue_prone, or "typical_..._higher_<complexity feature>"),
-- most valuable first.
WITH complexity AS (
    SELECT p.customer_id, sum(m.membership::numeric) AS complex_membership
    FROM customer_profiles p,
         jsonb_each_text(p.fuzzy_memberships -> 'problem_complexity_profile')
             AS m(segment, membership)
    WHERE m.segment ~ ('(trouble_prone|complex_cases|escalation_prone|many_issue_types'
                       '|money_issue_prone|higher_(issue_rate|case_effort|escalated_share'
                       '|issue_breadth|money_issue_share))')
    GROUP BY p.customer_id
)
SELECT p.customer_id,
       p.dominant_segments ->> 'problem_complexity_profile' AS complexity,
       round(c.complex_membership, 3)                       AS complex_membership,
       round(p.lifetime_value::numeric, 2)                  AS lifetime_value,
       p.dominant_segments ->> 'support_history'            AS support_history
FROM customer_profiles p
JOIN complexity c USING (customer_id)
WHERE c.complex_membership >= 0.5
ORDER BY p.lifetime_value DESC, p.customer_id
LIMIT 100;
