-- Customers to route to senior support: their problem-complexity segment is complex or
-- escalation-prone with a confident membership, most valuable first.
SELECT p.customer_id,
       p.dominant_segments ->> 'problem_complexity_profile'                         AS complexity,
       round((p.membership_strengths ->> 'problem_complexity_profile')::numeric, 3) AS strength,
       round(p.lifetime_value::numeric, 2)                                          AS lifetime_value,
       p.dominant_segments ->> 'support_history'                                    AS support_history
FROM customer_profiles p
WHERE p.dominant_segments ->> 'problem_complexity_profile'
      ~ '(trouble_prone|complex_cases|escalation_prone|many_issue_types|money_issue_prone)'
  AND (p.membership_strengths ->> 'problem_complexity_profile')::numeric >= 0.4
ORDER BY p.lifetime_value DESC
LIMIT 100;
